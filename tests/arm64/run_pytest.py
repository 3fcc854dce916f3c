"""Run pytest in this interpreter and write what ran, and against which code, to a JSON file.

Usage: python -P run_pytest.py OUT.json PYTEST_ARGS...

Under tools/arm64/python this proves more than an exit status: the outcome of every test, the
machine, where ``edge`` and ``federated`` were imported from (the installed wheel, never the
source tree) and that no TensorFlow module was loaded while the tests ran.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

HEAVY = ("tensorflow", "keras", "tensorflow_federated", "tf_keras", "jax")


class Outcomes:
    """Counts each test's outcome (a failure in setup or teardown counts as an error)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.failed: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            outcome = report.outcome if report.when == "call" else f"{report.outcome}-in-setup"
            self.counts[outcome] += 1
        elif report.when == "teardown" and report.failed:
            self.counts["error-in-teardown"] += 1
        if report.failed:
            self.failed.append(f"{report.nodeid} ({report.when})")


def module_dir(name: str) -> str | None:
    module = sys.modules.get(name)
    return str(Path(module.__file__).parent) if module and module.__file__ else None


def main() -> int:
    out, args = sys.argv[1], sys.argv[2:]
    outcomes = Outcomes()
    t0 = time.perf_counter()
    status = int(pytest.main(args, plugins=[outcomes]))
    report = {
        "exit_status": status,
        "outcomes": dict(outcomes.counts),
        "failed": outcomes.failed,
        "machine": platform.machine(),
        "python": platform.python_version(),
        "edge_from": module_dir("edge"),
        "federated_from": module_dir("federated"),
        "tf_modules_loaded": sorted(m for m in sys.modules if m.split(".")[0] in HEAVY),
        "seconds": time.perf_counter() - t0,
    }
    Path(out).write_text(json.dumps(report, indent=1))
    return status


if __name__ == "__main__":
    sys.exit(main())
