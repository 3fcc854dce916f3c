"""The dashboard's costs, measured side by side in one run:

1. page load time of each page in the real headless Chromium (navigation start to the load
   event, median of ``--loads``) with a store of ``--devices`` devices and ``--rounds`` rounds,
   filled the way the round runner fills it (tests/dashboard/store_fill.py);
2. the coordinator's extra memory with the dashboard on: the resident set of one process that
   imports the coordinator's modules and opens the store, before and after it imports and
   starts the dashboard and serves every page once;
3. the extra installed size: the files of the ``dashboard`` extra's packages and of their
   dependencies that the base (Pi) install does not already bring.

    python -m benchmarks.experiments.dashboard_pages [--devices 50 --rounds 200 --loads 5]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "dashboard"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))
PAGES = ("/", "/rounds", "/versions", "/quality")
#: The quality page's matrix is the 18 languages' (names only matter as labels here).
QUALITY_LANGUAGES = tuple(f"lang{i:02d}" for i in range(18))
DASHBOARD_REQS = ("starlette", "uvicorn", "jinja2", "python-multipart")
BASE_REQS = ("numpy", "pycryptodome", "grpcio", "protobuf")


def _closure(names: tuple[str, ...]) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = re.split(r"[ ;<>=!~\[(]", todo.pop(), maxsplit=1)[0].lower().replace("_", "-")
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        for req in dist.requires or []:
            if "extra ==" not in req:
                todo.append(req)
    return seen


def installed_size() -> tuple[int, list[str]]:
    """Bytes on disk of the dashboard's packages beyond the base install's, and their names."""
    extra = sorted(_closure(DASHBOARD_REQS) - _closure(BASE_REQS))
    total = 0
    for name in extra:
        for f in metadata.distribution(name).files or []:
            p = Path(str(f.locate()))
            if p.is_file():
                total += p.stat().st_size
    return total, extra


_MEMORY_PROBE = """
import json, sys, urllib.request
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) * 1024
import federated.fleet, federated.coordinator, federated.service
from federated.store import Store
store = Store(sys.argv[1], create=False)
store.devices(); store.versions(); store.rounds()
before = rss()
from federated.dashboard.wiring import start_dashboard
dash = start_dashboard(sys.argv[1], '127.0.0.1:0')
for path in %r:
    for _ in range(3):
        urllib.request.urlopen(dash.url.rstrip('/') + path).read()
after = rss()
dash.close()
print(json.dumps({'before': before, 'after': after}))
"""


def memory(db: Path) -> dict[str, int]:
    """RSS before and after the dashboard, in one fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE % (PAGES,), str(db)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def add_quality(db: Path, seed: int = 0) -> None:
    """The deployed version's fleet quality, an 18 x 18 confusion total over every device, as
    the evaluate stage's quality session stores it (so /quality draws its full heatmap)."""
    import random

    from federated.store import Store

    rng = random.Random(seed)
    store = Store(db)
    try:
        v = store.deployed()
        assert v is not None and v.round_id is not None, "fill_store deploys a trained version"
        n = len(QUALITY_LANGUAGES)
        counts = [
            [rng.randint(300, 900) if i == j else rng.randint(0, 40) for j in range(n)]
            for i in range(n)
        ]
        store.add_fleet_quality(
            v.version, v.round_id, QUALITY_LANGUAGES, counts, len(store.devices())
        )
    finally:
        store.close()


def page_loads(db: Path, loads: int) -> dict[str, dict[str, float]]:
    """Median and max load time (ms) of each page, and its HTML size, in headless Chromium."""
    from browser import chrome

    from federated.dashboard.wiring import start_dashboard

    dash = start_dashboard(db, "127.0.0.1:0")
    driver = chrome()
    try:
        base = dash.url.rstrip("/")
        out = {}
        for path in PAGES:
            driver.get(base + path)  # warm: templates compiled, connection open
            times = []
            for _ in range(loads):
                driver.get(base + path)
                times.append(
                    driver.execute_script(
                        "const t = performance.getEntriesByType('navigation')[0];"
                        "return t.loadEventEnd - t.startTime;"
                    )
                )
            size = len(urllib.request.urlopen(base + path).read())
            out[path] = {
                "median_ms": statistics.median(times),
                "max_ms": max(times),
                "html_bytes": size,
            }
        return out
    finally:
        driver.quit()
        dash.close()


def main() -> None:
    """Fill a store, measure, print one JSON object."""
    from store_fill import fill_store

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--loads", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "fleet.db"
        t = time.perf_counter()
        fill_store(db, args.devices, args.rounds, running=True)
        add_quality(db)
        fill_s = time.perf_counter() - t
        pages = page_loads(db, args.loads)
        mem = memory(db)
    size, packages = installed_size()
    print(
        json.dumps(
            {
                "devices": args.devices,
                "rounds": args.rounds,
                "fill_seconds": round(fill_s, 1),
                "pages": pages,
                "rss_before_mb": round(mem["before"] / 2**20, 1),
                "rss_after_mb": round(mem["after"] / 2**20, 1),
                "rss_extra_mb": round((mem["after"] - mem["before"]) / 2**20, 1),
                "installed_extra_mb": round(size / 2**20, 2),
                "installed_extra_packages": packages,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
