"""`pifed bench --suite coordinator --quick`: every figure measured, nothing made up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # TensorFlow, real fleets

TARGET_KEYS = {
    "coordinator_rss_vs_tensorflow",
    "candidate_export_vs_converter",
    "coordinator_start_to_listening",
    "server_install_vs_full",
    "fleet_time_vs_converter",
}


def test_the_coordinator_suite_measures_both_sides(
    trained_run: Path, data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, "-m", "pifed", "bench", "--suite", "coordinator", "--quick", "--out",
         str(out), "--run", str(trained_run), "--data", str(data_dir)],
        capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    s = results["suites"]["coordinator"]
    assert all(e["byte_identical"] for e in s["export"].values())
    fleet = s["fleet"]
    for side in ("no_tensorflow", "converter"):
        assert fleet[side]["ok_rounds"] == fleet["rounds"] == 1
    assert fleet["no_tensorflow"]["heavy_modules_loaded"] == []
    assert fleet["no_tensorflow"]["peak_rss_mb"] < fleet["converter"]["peak_rss_mb"]
    rows = {t["key"]: t for t in results["targets"]}
    assert set(rows) >= TARGET_KEYS
    assert all(rows[k]["ratio"] is not None for k in TARGET_KEYS)
    assert "### coordinator" in (out / "results.md").read_text()
