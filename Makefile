# The two commands a newcomer needs (see README):
#   make demo   - the main job, end to end: a coordinator and 3 Pi processes on loopback
#   make test   - the test suite (what CI runs)
# Both install uv (from PyPI) if it is missing, and uv installs the locked environment.

PYTHON ?= python3
UV := $(PYTHON) -m uv
SHARED_DATA := $(wildcard ../shared/data/names/Russian.txt)
# Data: $PIFED_DATA if set, else ../shared/data/names beside the checkout, else the download cache.
PIFED_DATA ?= $(if $(SHARED_DATA),$(abspath ../shared/data/names),)
export PIFED_DATA
OUT ?= runs/demo

.PHONY: demo baseline test lint uv data screenshots

uv:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv>=0.4"

data: uv
	@if [ -z "$(PIFED_DATA)" ]; then $(UV) run --frozen pifed data download; fi

demo: uv data
	$(UV) run --frozen pifed demo --out $(OUT)-$$(date +%Y%m%d-%H%M%S)

baseline: uv data
	$(UV) run --frozen pifed train --out runs/baseline

test: uv
	$(UV) run --frozen pytest

lint: uv
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check model edge/runtime.py edge/trainer.py edge/evaluate.py pifed
	$(UV) run --frozen ruff format --check federated/dashboard federated/store_views.py tests/dashboard
	$(UV) run --frozen mypy
	$(UV) run --frozen mypy benchmarks/suite/*.py benchmarks/experiments/fleet_parity.py benchmarks/experiments/fleet_liveness.py

# docs/dashboard-*.png: the dashboard's pages in headless Chromium on a real loopback fleet
# (the browser test; tools/browser/setup.sh installs chromium + chromium-driver if missing).
screenshots: uv data
	PIFED_SCREENSHOTS=$(abspath docs) $(UV) run --frozen pytest -p no:cacheprovider -q \
		tests/integration/test_dashboard_browser.py
