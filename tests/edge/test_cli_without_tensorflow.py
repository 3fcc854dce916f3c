"""The Pi-side commands of the one `pifed` entry point run where TensorFlow cannot be imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # starts TensorFlow, TFF or real processes

_RUN = """
import sys
class _Block:
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("tensorflow", "tensorflow_federated", "keras", "jax", "rich",
                                  "matplotlib"):
            raise ImportError(f"{name} is blocked on this Pi")
sys.meta_path.insert(0, _Block())
from pifed.cli import main
code = main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "rich"))
assert not loaded, loaded
raise SystemExit(code)
"""


def _pifed(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _RUN, *args], capture_output=True, text=True, timeout=300
    )


def test_help_and_pi_commands_need_no_tensorflow(trained_run: Path) -> None:
    for cmd in ("edge", "predict", "evaluate", "data"):
        proc = _pifed(cmd, "--help")
        assert proc.returncode == 0, proc.stderr
    model = trained_run / "model" / "model_int8.tflite"
    proc = _pifed(
        "evaluate", "--model", str(model), "--data", str(trained_run / "test_names"), "--json"
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["n"] > 0
    proc = _pifed("predict", "--model", str(model), "Ivanov")
    assert proc.returncode == 0 and "Russian" in proc.stdout, proc.stderr


def test_a_coordinator_command_on_a_pi_fails_with_a_clear_message(tmp_path: Path) -> None:
    proc = _pifed("train", "--data", str(tmp_path), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert "blocked" in proc.stderr and "Traceback" not in proc.stderr


def test_a_pi_owner_can_split_the_data_without_tensorflow(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "fleet"
    proc = _pifed("data", "split", "--data", str(data_dir), "--devices", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("names") == 2 and (out / "pi-2" / "Russian.txt").is_file()
    again = _pifed("data", "split", "--data", str(data_dir), "--devices", "2", "--out", str(out))
    assert again.returncode == 2 and "not empty" in again.stderr
    assert "Traceback" not in again.stderr


def test_a_pi_makes_its_signing_key_without_tensorflow(tmp_path: Path) -> None:
    proc = _pifed("edge", "--init-identity", "--identity", str(tmp_path / "id"))
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.strip()) == 64 and (tmp_path / "id" / "device.key").is_file()
    # Running without a certificate says which file is missing and how to get it.
    proc = _pifed(
        *("edge", "--server", "127.0.0.1:1", "--insecure", "--token", "t"),
        *("--identity", str(tmp_path / "id"), "--state", str(tmp_path / "s")),
    )
    assert proc.returncode == 2 and "device certificate" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
