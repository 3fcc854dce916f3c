"""A coordinator where TensorFlow cannot be imported: certs, enroll, server (two secure rounds
with the gate and a deployment, real `pifed edge` processes), devices, models and rollback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fleet_harness import Edge, device_folders, enroll_with_cli, server_argv, start_edges

from model.dataset import NamesDataset

pytestmark = pytest.mark.slow  # starts real processes (and TensorFlow for the model fixture)

# TensorFlow, Keras, TFF, jax and what only the full set has cannot be imported; at exit the
# process must not have loaded any of them.
BLOCK = """
import sys
BLOCKED = ("tensorflow", "tensorflow_federated", "keras", "tf_keras", "jax", "rich", "matplotlib")
class _Block:
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: a Pi coordinator has no TensorFlow")
sys.meta_path.insert(0, _Block())
from pifed.cli import main
code = main(sys.argv[1:])
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(BLOCKED))
assert not loaded, loaded
raise SystemExit(code)
"""


def pifed_no_tf(*args: str) -> list[str]:
    """The CLI in a process that cannot import TensorFlow."""
    return [sys.executable, "-c", BLOCK, *args]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(pifed_no_tf(*args), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_a_coordinator_without_tensorflow_runs_secure_rounds_and_deploys(
    tmp_path: Path, fleet_model: Path, ds: NamesDataset
) -> None:
    certs, db = tmp_path / "certs", tmp_path / "fleet.db"
    run("certs", "--out", str(certs))
    tokens = enroll_with_cli(lambda *a: run(*a).stdout, db, tmp_path, [f"pi-{i}" for i in range(2)])
    port = 20000 + (os.getpid() + 7) % 20000
    log = tmp_path / "server.log"
    t0 = time.monotonic()
    server = subprocess.Popen(
        pifed_no_tf(*server_argv(db, certs, fleet_model, port, 2, 20, "--deploy-kind", "dynamic")),
        stdout=open(log, "ab"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    folders = device_folders(ds, tmp_path, len(tokens), seed=3)
    edges: list[Edge] = []
    try:
        while "listening" not in log.read_text(errors="replace"):
            assert server.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() - t0 < 60, "the coordinator never listened"
            time.sleep(0.05)
        edges = start_edges(port, tokens, folders, tmp_path, certs / "ca.pem")
        assert server.wait(400) == 0, log.read_text()[-3000:]
        edges[0].wait_for(lambda e: e.get("event") == "deploy", timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
        for e in edges:
            e.stop()
    text = log.read_text()
    assert "TFLite converter" not in text  # the template map wrote every candidate
    versions = json.loads(run("models", "--db", str(db), "--json").stdout)
    candidates = [v for v in versions if v["round"] is not None]
    assert len(candidates) == 2 and all(v["fleet"] for v in candidates)
    assert any(v["deployed"] for v in candidates)
    assert "pi-0" in run("devices", "--db", str(db)).stdout
    run("rollback", "--db", str(db), "1", "--force")
    deployed = [v for v in json.loads(run("models", "--db", str(db), "--json").stdout)]
    assert [v["version"] for v in deployed if v["deployed"]] == [1]


def test_int8_without_tensorflow_stops_with_the_fix(tmp_path: Path, fleet_model: Path) -> None:
    """No int8 without the converter: the round says what to do instead of a traceback."""
    from federated.exporter import ExportError

    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "class B:\n"
            "    def find_spec(self, n, p, t=None):\n"
            "        if n.split('.')[0] == 'tensorflow': raise ImportError(n)\n"
            "sys.meta_path.insert(0, B())\n"
            "import numpy as np\n"
            "from federated.exporter import CandidateExporter\n"
            "from model.manifest import ModelManifest\n"
            f"m = ModelManifest.load({str(fleet_model)!r})\n"
            f"e = CandidateExporter(m, {str(fleet_model)!r})\n"
            "assert e.writer is not None\n"
            "e.export(np.zeros(m.num_params, np.float32), 2, ('float', 'dynamic'))\n"
            "e.export(np.zeros(m.num_params, np.float32), 2, ('float', 'int8'))\n",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and ExportError.__name__ in proc.stderr
    assert "--deploy-kind dynamic" in proc.stderr and '".[full]"' in proc.stderr


def test_no_model_folder_and_no_tensorflow_says_how_to_get_one(tmp_path: Path) -> None:
    proc = subprocess.run(
        pifed_no_tf("server", "--db", str(tmp_path / "f.db"), "--insecure", "--listen",
                    "127.0.0.1:0"),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "python -m federated.exporter DIR" in proc.stderr and "--model DIR" in proc.stderr
