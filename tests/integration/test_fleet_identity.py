"""Device identities in a real fleet: `pifed edge` subprocesses enrolled with an authority, a
TLS coordinator, real secure aggregation and TFLite training. A revoked Pi and a Pi presenting
another device's key and certificate are refused with a clear error; the round completes with
the enrolled Pis."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from fleet_harness import PROMOTE_ALL, Edge, device_folders, enroll_pis, start_edges

from federated.coordinator import FleetConfig
from federated.fleet import FleetServer
from federated.round_settings import RoundSettings
from federated.store import Store
from model.dataset import NamesDataset

pytestmark = pytest.mark.slow  # starts TensorFlow and real processes


def _wait_exit(edge: Edge, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while edge.proc.poll() is None:
        assert time.monotonic() < deadline, f"{edge.name} still runs:\n{edge.log.read_text()}"
        time.sleep(0.1)
    return edge.proc.returncode


def test_enrolled_pis_complete_a_round_and_revoked_or_stolen_identities_are_refused(
    tmp_path: Path, fleet_model: Path, certs: Path, ds: NamesDataset
) -> None:
    names = [f"pi-{i}" for i in range(4)]
    tokens, _ = enroll_pis(tmp_path, names)
    # pi-2 holds pi-0's key and certificate (copied from it) with its own token.
    stolen = tmp_path / "pi-2" / "identity"
    for f in ("device.key", "device.cert"):
        (stolen / f).unlink()
        shutil.copy2(tmp_path / "pi-0" / "identity" / f, stolen / f)
    store = Store(tmp_path / "fleet.db")
    store.revoke("pi-3")
    ids = {d.name: d.id for d in store.devices()}
    store.close()
    cfg = FleetConfig(
        rounds=1,
        min_devices=2,
        settings=RoundSettings(
            local_epochs=1,
            gate=PROMOTE_ALL,
        ),
        stage_timeout=8.0,
        train_timeout=30.0,
        eval_timeout=60.0,
        poll_wait=1.0,
        live_window=15.0,
    )
    server = FleetServer.start(tmp_path / "fleet.db", fleet_model, cfg, "127.0.0.1:0", certs)
    folders = device_folders(ds, tmp_path, 4)
    edges = start_edges(server.port, tokens, folders, tmp_path, certs / "ca.pem")
    try:
        assert _wait_exit(edges[2]) == 3  # refused: exit 3, the device cannot fix it by retrying
        assert _wait_exit(edges[3]) == 3
        log2, log3 = edges[2].log.read_text(), edges[3].log.read_text()
        assert "the coordinator refused this device" in log2
        assert "presented a certificate that is not the one enrolled for it" in log2, log2
        assert "pi-2's own certificate" in log2
        assert "'pi-3' was revoked" in log3, log3
        summaries = server.coordinator.run()
        assert summaries and summaries[0]["ok"], summaries
        assert summaries[0]["survivors"] == 2
        round_row = server.store.rounds()[0]
        assert sorted(round_row["participants"]) == sorted([ids["pi-0"], ids["pi-1"]])
        started = [e for e in edges[0].events() if e.get("event") == "started"]
        assert started[0]["device_id"] == ids["pi-0"]  # its certificate's id is its store id
        rejections = server.service.rejections
        assert any("presented a certificate" in r for r in rejections)
        assert any("was revoked" in r for r in rejections)
    finally:
        for e in edges:
            e.stop()
        server.close()
