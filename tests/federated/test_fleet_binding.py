"""Binding in the fleet (issue 19): the session client id is the authenticated device, a device
holding another's certificate gets no task, a revoked device is left out of the round, and a Pi
whose own input fails leaves the round at once. In-process fake Pis running the edge's real
``SecAggMember`` and the real secure-aggregation client; a real SQLite store."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path

import numpy as np
import pytest
from fleet_fakes import (
    FakePi,
    fake_cfg,
    fake_coordinator,
    pis_running,
    poll_header,
    run_one_round,
    seeded_store,
)

from edge.secagg import decode_message
from edge.tasks import PollRequest, Reply, SecAggReply
from federated.coordinator import CertificateRefused


def _sessions(store) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return store._db.execute("SELECT status, dropped FROM secagg_sessions").fetchall()


def test_a_pi_whose_own_update_is_not_finite_reports_it_and_is_dropped_at_once(
    fleet_dir: Path,
) -> None:
    store, devices = seeded_store(fleet_dir, ["a", "b", "c"])
    cfg = fake_cfg(stage_timeout=60.0)
    coord = fake_coordinator(store, cfg)
    pis = [FakePi(coord, d, np.nan if i == 2 else 0.1) for i, d in enumerate(devices)]
    t = time.monotonic()
    summary = run_one_round(coord, pis)
    assert time.monotonic() - t < 30  # not the 60 s masked-input deadline
    assert summary["ok"] and summary["survivors"] == 2, summary
    assert pis[2].errors == [
        "ValueOutOfRange: update contains NaN or infinity; fix the local training step"
    ]
    assert not pis[2].member.active  # it left: its client and update are forgotten
    (status, dropped), *_ = _sessions(store)
    assert status == "completed" and str(devices[2].id) in dropped
    store.close()


class _Impersonator(FakePi):
    """Sends its secure-aggregation messages under another device's client id."""

    victim = 0

    def answer(self, task: object, payload: bytes) -> Reply:
        reply = super().answer(task, payload)
        if isinstance(reply, SecAggReply):
            msg = dataclasses.replace(decode_message(reply.message), client_id=self.victim)
            return SecAggReply(reply.stage, msg.to_bytes())
        return reply


def test_a_message_claiming_another_client_id_is_refused_and_its_sender_dropped(
    fleet_dir: Path,
) -> None:
    store, devices = seeded_store(fleet_dir, ["a", "b", "c", "d"])
    coord = fake_coordinator(store, fake_cfg(min_devices=4, threshold=3))
    pis: list[FakePi] = [FakePi(coord, d, 0.1) for d in devices[:3]]
    bad = _Impersonator(coord, devices[3], 0.1)
    bad.victim = devices[0].id
    summary = run_one_round(coord, [*pis, bad])
    assert summary["ok"] and summary["survivors"] == 3, summary
    (status, dropped), *_ = _sessions(store)
    assert status == "completed" and str(devices[3].id) in dropped
    assert str(devices[0].id) not in dropped  # the victim took part as itself
    store.close()


def test_a_device_revoked_after_it_connected_is_left_out_of_the_round(fleet_dir: Path) -> None:
    store, devices = seeded_store(fleet_dir, ["a", "b", "c", "d"])
    events: list[dict] = []
    coord = fake_coordinator(store, fake_cfg(min_devices=3), on_event=events.append)
    pis = [FakePi(coord, d, 0.1) for d in devices]
    with pis_running(coord, pis, connected=True):
        store.revoke("d")
        summary = coord.run_round()
    assert summary["ok"] and summary["devices"] == 3, summary
    refused = [e for e in events if e.get("event") == "device_refused"]
    assert [e["device"] for e in refused] == [devices[3].id]
    assert devices[3].id not in store.rounds()[-1]["participants"]
    store.close()


def test_a_poll_presenting_another_devices_certificate_gets_no_task(fleet_dir: Path) -> None:
    store, (a, b) = seeded_store(fleet_dir, ["a", "b"])
    coord = fake_coordinator(store)
    coord.broker.stop()  # no long-poll waits: the check comes before any task
    with pytest.raises(CertificateRefused, match=r"device 'a' \(id \d+\) presented a certificate"):
        coord.poll(a, poll_header(b))
    with pytest.raises(CertificateRefused, match="presented no device certificate"):
        coord.poll(a, PollRequest(None).header())
    assert b.certificate is not None
    coord.poll(a, PollRequest(None, hashlib.sha256(a.certificate or b"").hexdigest()).header())
    store.close()
