"""An all-Pi fleet: the coordinator itself on the emulated Raspberry Pi OS userland, with two
emulated Pis, through two secure rounds with the gate and a deployment (Bookworm and Trixie).

The emulated userland gets ``pifed[server]`` (``PIFED_ARM64_EXTRA=server tools/arm64/setup.sh``,
into ``site-server/``): no TensorFlow exists there, so every candidate is written from the
template map. The model folder (with its map) is made on the host, as on a machine with the full
set. qemu is slow: one tiny model, short rounds, timeouts sized for emulation.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from fleet_harness import enroll_with_cli, server_argv, write_device_names
from test_arm64_edge import ARM64, EMULATED_PYTHON, ROOT, can_install_qemu, in_ci

from edge.device_token import write_token_file
from federated.store import Store
from model.dataset import NamesDataset

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]


def emulated_env(release: str) -> dict[str, str]:
    """What tools/arm64/python needs for the coordinator's set of this release."""
    return {**os.environ, "PIFED_ARM64_RELEASE": release, "PIFED_ARM64_EXTRA": "server"}


def pifed_on_pi(*args: str) -> list[str]:
    """`pifed` from the installed wheel on the emulated Pi (-P: not the checkout)."""
    return [str(EMULATED_PYTHON), "-P", "-m", "pifed", *args]


def set_up_server_set(release: str) -> None:
    if not in_ci() and not can_install_qemu():
        pytest.skip("qemu-aarch64-static is missing and cannot be installed here")
    env = emulated_env(release)
    if env.get("UV"):
        env["PATH"] = f"{Path(env['UV']).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        [str(ARM64 / "setup.sh"), "--release", release, str(ROOT)],
        capture_output=True,
        text=True,
        timeout=1500,
        env=env,
    )
    assert proc.returncode == 0, f"setup.sh failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"


@pytest.mark.parametrize("release", ["bookworm", "trixie"])
def test_an_emulated_pi_coordinates_two_emulated_pis(
    release: str, tmp_path: Path, fleet_model: Path, ds: NamesDataset
) -> None:
    set_up_server_set(release)
    env = emulated_env(release)

    def on_pi(*args: str) -> str:
        proc = subprocess.run(
            pifed_on_pi(*args), capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stdout

    machine = subprocess.run(
        [str(EMULATED_PYTHON), "-c", "import platform, importlib.util as u; "
         "print(platform.machine(), u.find_spec('tensorflow') is None)"],
        capture_output=True, text=True, env=env, timeout=120,
    ).stdout.split()  # fmt: skip
    assert machine == ["aarch64", "True"]
    certs, db = tmp_path / "certs", tmp_path / "fleet.db"
    on_pi("certs", "--out", str(certs))
    tokens = enroll_with_cli(on_pi, db, tmp_path, [f"pi-{i}" for i in range(2)])
    port = 20000 + (os.getpid() + 11) % 20000
    log = tmp_path / "server.log"
    server = subprocess.Popen(
        pifed_on_pi(
            *server_argv(
                db, certs, fleet_model, port, 2, 180,
                "--deploy-kind", "dynamic", "--train-timeout", "900",
            )
        ),
        stdout=open(log, "ab"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )  # fmt: skip
    rows = np.random.default_rng(5).permutation(len(ds))
    edges: list[subprocess.Popen[bytes]] = []
    try:
        t0 = time.monotonic()
        while "listening" not in log.read_text(errors="replace"):
            assert server.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() - t0 < 300, "the emulated coordinator never listened"
            time.sleep(0.2)
        for i, tok in enumerate(tokens):
            names = write_device_names(ds, rows[i * 200 : (i + 1) * 200], tmp_path / f"d{i}")
            edges.append(
                subprocess.Popen(
                    pifed_on_pi(
                        "edge",
                        "--server",
                        f"127.0.0.1:{port}",
                        "--token-file",
                        str(write_token_file(tmp_path / f"pi-{i}" / "token", tok)),
                        "--data",
                        str(names),
                        "--state",
                        str(tmp_path / f"pi-{i}" / "state"),
                        "--ca",
                        str(certs / "ca.pem"),
                        "--identity",
                        str(tmp_path / f"pi-{i}" / "identity"),
                        "--seed",
                        str(i),
                    ),
                    stdout=subprocess.DEVNULL,
                    stderr=open(tmp_path / f"pi-{i}.log", "wb"),  # noqa: SIM115
                    env=env,
                    cwd=tmp_path,
                    start_new_session=True,
                )
            )
        assert server.wait(1800) == 0, log.read_text()[-4000:]
    finally:
        if server.poll() is None:
            server.kill()
        for e in edges:
            if e.poll() is None:
                e.terminate()
                try:
                    e.wait(30)
                except subprocess.TimeoutExpired:
                    e.kill()
    text = log.read_text()
    assert "TFLite converter" not in text, text[-3000:]
    store = Store(db, create=False)
    try:
        done = [r for r in store.rounds() if r["status"] == "completed"]
        assert len(done) == 2 and all(len(r["survivors"]) == 2 for r in done)
        candidates = [v for v in store.versions() if v.round_id is not None]
        assert len(candidates) == 2 and all(v.fleet_metrics for v in candidates)
        deployed = store.deployed()
        assert deployed is not None and deployed.round_id is not None
        assert "model_dynamic.tflite" in deployed.artifacts
    finally:
        store.close()
    events = [
        json.loads(line)
        for line in (tmp_path / "pi-0.log").read_text(errors="replace").splitlines()
        if line.startswith("{")
    ]
    assert any(e.get("event") == "deploy" for e in events)
