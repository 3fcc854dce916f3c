"""`pifed simulate` as a user runs it: a real process, real TFF worker, real TFLite artifacts.

Worker shutdown is checked from outside: the test marks the `pifed` process's environment with
a unique token, which every child inherits, and then looks through /proc for any process still
carrying it. While the run is alive the token must be on a `worker_binary` (so the check can
fail); afterwards nothing may carry it.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # starts TensorFlow, TFF or real processes

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--units", "16", "--embed-dim", "8", "--seed", "1"]


def _marked(token: str) -> list[tuple[int, str]]:
    """(pid, command name) of every live process whose environment carries ``token``."""
    out = []
    needle = f"PIFED_SIM_TEST={token}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
        state = stat.rsplit(")", 1)[1].split()[0]
        if needle in env.split(b"\0") and state != "Z":
            out.append((int(entry.name), (entry / "comm").read_text().strip()))
    return out


def _wait_for(predicate: object, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(interval)
    return False


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """Every 4th line of each language file: all 18 languages, a quarter of the names."""
    out = tmp_path_factory.mktemp("names")
    for f in sorted(data_dir.glob("*.txt")):
        lines = f.read_text(encoding="utf-8").splitlines()
        (out / f.name).write_text("\n".join(lines[::4]) + "\n", encoding="utf-8")
    return out


def _simulate(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``pifed simulate ARGS`` from the checkout, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "pifed", "simulate", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def _env(token: str) -> dict[str, str]:
    return {**os.environ, "PIFED_SIM_TEST": token, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def compare_run(tmp_path_factory: pytest.TempPathFactory, small_data: Path) -> Iterator[dict]:
    """One `pifed simulate --compare` piped into `cat`, watched for its worker."""
    out = tmp_path_factory.mktemp("sim")
    token = uuid.uuid4().hex
    cmd = (
        f"set -o pipefail; {sys.executable} -m pifed simulate --data {small_data} --out {out} "
        f"--clients 3 --rounds 1 --compare --gate-min-accuracy 0.05 "
        f"--gate-min-balanced-accuracy 0 {' '.join(TINY)} 2>&1 | cat"
    )
    proc = subprocess.Popen(
        ["bash", "-c", cmd],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(token),
        cwd=ROOT,
        start_new_session=True,  # so a timeout can end the whole pipeline
    )
    try:
        saw_worker = _wait_for(lambda: any(c == "worker_binary" for _, c in _marked(token)), 600)
        stdout, _ = proc.communicate(timeout=900)  # returns only once every writer has closed
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    yield {
        "out": out,
        "rc": proc.returncode,
        "stdout": stdout,
        "saw_worker": saw_worker,
        "left": _marked(token),
    }


def test_run_succeeds_through_a_pipe_and_leaves_no_worker(compare_run: dict) -> None:
    assert compare_run["rc"] == 0, compare_run["stdout"][-4000:]
    assert compare_run["saw_worker"], "never saw the run's worker_binary: the check is vacuous"
    assert compare_run["left"] == [], f"processes outlived `pifed simulate`: {compare_run['left']}"
    assert "federated-secure round 1" in compare_run["stdout"]


def test_metrics_record_every_run_the_config_and_the_gate(compare_run: dict) -> None:
    out = compare_run["out"]
    report = json.loads((out / "metrics.json").read_text())
    assert report["config"]["clients"] == 3 and report["config"]["units"] == 16
    assert report["config"]["gate"]["min_accuracy"] == 0.05
    assert set(report["runs"]) == {"centralized", "federated-plain", "federated-secure"}
    secure = report["runs"]["federated-secure"]["final"]
    holdout = report["data"]["holdout_rows"]
    assert secure["fleet_examples"] == holdout and secure["fleet_devices"] == 3
    # Gate threshold 0.05: any trained model clears it, so round 1 is the first deployment.
    assert secure["promote"] is True and "first deployment" in secure["gate_reason"]
    assert secure["deployed_version"] == secure["version"] == "r001"
    assert report["runs"]["centralized"]["final"]["promote"] is None
    agg = secure["aggregator"]
    assert "zeroed_count" in agg and "zeroing.clipping_norm" in agg
    assert report["runs"]["federated-plain"]["final"]["aggregator"] == {}
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [r["run"] for r in rows] == ["centralized", "federated-plain", "federated-secure"]
    for r in rows:
        assert 0.0 < float(r["test_accuracy"]) <= 1.0
        assert 0.0 < float(r["fleet_balanced_accuracy"]) <= 1.0
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / "rounds-tmp").exists(), "per-round exports must be cleaned up"


def test_final_model_is_the_secure_run_and_runs_on_the_edge_runtime(compare_run: dict) -> None:
    from edge.runtime import Classifier
    from model.manifest import ModelManifest

    model_dir = compare_run["out"] / "model"
    manifest = ModelManifest.load(model_dir)
    assert set(manifest.artifacts) == {"float", "dynamic", "int8", "train"}
    assert (model_dir / "keras_model.keras").is_file()
    assert manifest.version == "sim-federated-secure-r001"
    report = json.loads((compare_run["out"] / "metrics.json").read_text())
    assert report["final_model"]["version"] == manifest.version
    clf = Classifier.from_dir(model_dir, "int8")
    ranked = clf.predict(["Nakamura", "Ivanov"])
    assert len(ranked) == 2 and all(len(r) == 3 for r in ranked)
    assert np.isfinite([p for r in ranked for _, p in r]).all()


def test_ctrl_c_mid_run_exits_130_and_leaves_no_worker(small_data: Path, tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "pifed", "simulate", "--data", str(small_data)),
            *("--out", str(tmp_path), "--clients", "2", "--rounds", "50", *TINY),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(token),
        cwd=ROOT,
    )
    try:
        assert _wait_for(lambda: any(c == "worker_binary" for _, c in _marked(token)), 600), (
            "the run never started its worker"
        )
        time.sleep(2)  # inside the federated process now, not in start-up
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr[-3000:]
    assert "interrupted" in stderr
    assert _wait_for(lambda: not _marked(token), 10), f"left behind: {_marked(token)}"
    assert not (tmp_path / "metrics.json").exists()


def test_invalid_flags_exit_2_naming_the_flag(tmp_path: Path, data_dir: Path) -> None:
    proc = _simulate("--out", str(tmp_path), "--fraction", "0")
    assert proc.returncode == 2
    assert "--fraction must be in (0, 1]" in proc.stderr
    proc = _simulate("--out", str(tmp_path), "--workers", "nohost")
    assert proc.returncode == 2 and "HOST:PORT" in proc.stderr
    out = tmp_path / "with-bad-start"
    proc = _simulate(
        "--out", str(out), "--data", str(data_dir), "--init-model", str(tmp_path / "nowhere"),
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "--init-model" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_a_bad_round_setting_exits_2_naming_the_flag(tmp_path: Path) -> None:
    """The round flags are the fleet's (RoundSettings); their errors read like the others."""
    out = tmp_path / "bad-rate"
    proc = _simulate("--out", str(out), "--client-lr", "0")
    assert proc.returncode == 2
    assert "pifed simulate: error: --client-lr" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
