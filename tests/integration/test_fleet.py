"""The fleet runtime with real processes on loopback: a TLS coordinator, `pifed edge`
subprocesses, real secure aggregation, a real SQLite file and real TFLite training."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from fleet_harness import (  # tests/integration on sys.path
    PROMOTE_ALL,
    device_folders,
    enroll_pis,
    server_argv,
    start_edges,
    started_fleet,
    write_device_names,
)

from edge.secagg import Stage
from edge.transport import ChannelConfig, FleetChannel, TransportError
from edge.wire import encode
from federated.coordinator import FleetConfig
from federated.fleet import FleetServer
from federated.round_settings import RoundSettings
from federated.store import Store
from model.dataset import NamesDataset

pytestmark = pytest.mark.slow  # starts TensorFlow, TFF or real processes

NAMES_PER_DEVICE = 300


def _cfg(rounds: int = 1, min_devices: int = 2, **kw: object) -> FleetConfig:
    settings: dict = dict(
        local_epochs=1,
        client_lr=0.5,
        gate=PROMOTE_ALL,
    )
    for key in RoundSettings.__dataclass_fields__:
        if key in kw:
            settings[key] = kw.pop(key)
    base: dict = dict(
        rounds=rounds,
        min_devices=min_devices,
        settings=RoundSettings(**settings),
        stage_timeout=8.0,
        train_timeout=20.0,
        eval_timeout=60.0,
        poll_wait=1.0,
        live_window=15.0,
        wait_devices_timeout=120.0,
    )
    base.update(kw)
    return FleetConfig(**base)


class Fleet:
    """A coordinator in this process and N edge subprocesses."""

    def __init__(
        self,
        root: Path,
        model: Path,
        certs: Path,
        ds: NamesDataset,
        n: int,
        cfg: FleetConfig,
        faults: dict[int, str] | None = None,
    ) -> None:
        self.root = root
        self.store_path = root / "fleet.db"
        names = [f"pi-{i}" for i in range(n)]
        tokens, self.authority = enroll_pis(root, names)
        self.tokens = dict(zip(names, tokens, strict=True))
        self.server = FleetServer.start(self.store_path, model, cfg, "127.0.0.1:0", certs)
        self.edges = start_edges(
            self.server.port,
            tokens,
            device_folders(ds, root, n, NAMES_PER_DEVICE),
            root,
            certs / "ca.pem",
            {i: {"exit_after": stage} for i, stage in (faults or {}).items()},
        )

    def close(self) -> None:
        for e in self.edges:
            e.stop()
        self.server.close()


@pytest.fixture
def fleet_factory(tmp_path: Path, fleet_model: Path, certs: Path, ds: NamesDataset) -> Iterator:
    made: list[Fleet] = []

    def make(n: int, cfg: FleetConfig, faults: dict[int, str] | None = None) -> Fleet:
        f = Fleet(tmp_path, fleet_model, certs, ds, n, cfg, faults)
        made.append(f)
        return f

    yield make
    for f in made:
        f.close()


def test_a_round_trains_aggregates_evaluates_promotes_and_deploys(fleet_factory) -> None:
    fleet = fleet_factory(2, _cfg(rounds=1))
    summaries = fleet.server.coordinator.run()
    assert summaries[0]["ok"], summaries
    assert summaries[0]["survivors"] == 2 and summaries[0]["promoted"]
    store = fleet.server.store
    deployed = store.deployed()
    assert deployed is not None and deployed.version == summaries[0]["version"]
    for edge in fleet.edges:  # the promoted version lands on every Pi, atomically
        edge.wait_for(
            lambda e: e.get("event") == "deploy" and e.get("deployed") == deployed.version
        )
        assert (edge.state / "current").resolve().name == f"v{deployed.version}"
        events = edge.events()
        kinds = [e["event"] for e in events]
        assert "train" in kinds and "evaluate" in kinds
        # Training's session, then the evaluate stage's quality session: every stage of the
        # actively secure protocol (consistency check included), twice.
        stages = [e.get("stage") for e in events if e["event"] == "secagg"]
        half = len(stages) // 2
        assert half == len(Stage) and stages[:half] == stages[half:], stages
        first_quality = [i for i, k in enumerate(kinds) if k == "secagg"][half]
        assert kinds.index("evaluate") < first_quality
    assert [r["status"] for r in store.rounds()] == ["completed"]


def test_a_cosine_schedule_and_a_step_cap_reach_the_pis_round_by_round(fleet_factory) -> None:
    cfg = _cfg(rounds=2, client_lr=0.5, client_lr_schedule="cosine", local_steps=3)
    fleet = fleet_factory(2, cfg)
    summaries = fleet.server.coordinator.run()
    assert [s["ok"] for s in summaries] == [True, True], summaries
    for edge in fleet.edges:
        trained = [e for e in edge.events() if e["event"] == "train"]
        # Round 1 of 2 at the base rate, round 2 half-way down the cosine.
        assert [e["lr"] for e in trained] == pytest.approx([0.5, 0.25])
        # 3 batches of 32: the update is weighted by the 96 names it was trained on.
        assert [(e["local_steps"], e["examples"]) for e in trained] == [(3, 96), (3, 96)]


def test_pis_dying_at_every_stage_still_give_the_survivors_sum(fleet_factory) -> None:
    # n = 13, t = max(floor(26/3) + 1, floor((13 + 4)/2) + 1) = 9: up to 4 may drop. One Pi
    # dies right after answering each step, so one drops at AdvertiseKeys, ShareKeys,
    # MaskedInputCollection and (after its consistency signature) Unmasking. A Pi dying before
    # its signature is tested in-process (test_secagg_server.py, every stage): a fifth
    # death here would leave fewer than t.
    faults = {
        0: "train",
        1: "AdvertiseKeysRequest",
        2: "ShareKeysRequest",
        3: "ConsistencyCheckRequest",
    }
    fleet = fleet_factory(13, _cfg(rounds=1, min_devices=13), faults)
    summaries = fleet.server.coordinator.run()
    assert summaries[0]["ok"], summaries
    store = fleet.server.store
    (dropped_json,) = store._db.execute("SELECT dropped FROM secagg_sessions").fetchone()
    dropped_stages = sorted(json.loads(dropped_json).values())
    assert dropped_stages == sorted(
        ["ADVERTISE_KEYS", "SHARE_KEYS", "MASKED_INPUT_COLLECTION", "UNMASKING"]
    ), dropped_stages
    # The masked input of the Pi that died before unmasking is in the sum; the others are not.
    assert summaries[0]["survivors"] == 10
    for edge in fleet.edges[:4]:
        assert edge.proc.wait(30) == 137


def test_too_many_dropouts_abort_cleanly_and_the_next_round_succeeds(fleet_factory) -> None:
    # --rounds counts completed rounds: the aborted one is followed by another.
    fleet = fleet_factory(3, _cfg(rounds=1, min_devices=2), {0: "AdvertiseKeysRequest"})
    # Round 1 must hold all three (min_devices=2 would start it with the first two to poll,
    # and the Pi that dies might be the third): wait until all three are live.
    coordinator = fleet.server.coordinator
    deadline = time.monotonic() + 120
    while len(coordinator.live_devices()) < 3:
        assert time.monotonic() < deadline, "the three edge processes never all connected"
        time.sleep(0.1)
    summaries = coordinator.run()  # t = 3 for n = 3: one dropout is too many
    rounds = fleet.server.store.rounds()
    assert [r["status"] for r in rounds] == ["aborted", "completed"], rounds
    assert "secure aggregation aborted" in rounds[0]["reason"]
    assert not summaries[0]["ok"] and summaries[1]["ok"]
    assert len(rounds[1]["survivors"]) == 2  # the next round runs with who is left
    assert fleet.server.store.versions()[-1].round_id == rounds[1]["id"]  # nothing from round 1


def _channel(port: int, token: str, certs: Path | None, insecure: bool = False) -> FleetChannel:
    return FleetChannel(
        ChannelConfig(
            f"127.0.0.1:{port}",
            token,
            None if insecure else certs / "ca.pem",
            insecure=insecure,
            max_bytes=1 << 20,
        )
    )


def test_hostile_and_bad_input_is_rejected_with_a_reason_and_the_round_unaffected(
    fleet_factory, certs: Path
) -> None:
    fleet = fleet_factory(2, _cfg(rounds=1))
    port, service = fleet.server.port, fleet.server.service
    store = Store(fleet.store_path)
    revoked = store.enroll("pi-stolen")
    store.revoke("pi-stolen")
    store.close()
    good = fleet.tokens["pi-0"]
    runner = fleet.server.run_rounds_in_background()
    fleet.edges[0].wait_for(lambda e: e.get("event") == "train")

    def code_of(fn) -> str:
        with pytest.raises(TransportError) as info:
            fn()
        return info.value.code

    assert code_of(lambda: _channel(port, "forged", certs).poll({}, 1)) == "UNAUTHENTICATED"
    assert code_of(lambda: _channel(port, revoked, certs).poll({}, 1)) == "PERMISSION_DENIED"
    # A replayed / stale submission: a task id that is not open.
    assert (
        code_of(lambda: _channel(port, good, certs).submit({"task": "0" * 32, "status": "ok"}))
        == "FAILED_PRECONDITION"
    )
    # A malformed frame, sent raw.
    ch = grpc.secure_channel(
        f"127.0.0.1:{port}", grpc.ssl_channel_credentials((certs / "ca.pem").read_bytes())
    )
    call = ch.unary_unary("/pifed.Fleet/Submit")
    with pytest.raises(grpc.RpcError) as info:
        call(b"\x00garbage", metadata=(("authorization", f"Bearer {good}"),), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # An oversized message.
    with pytest.raises(grpc.RpcError) as info:
        call(
            encode({"task": "x"}, b"\0" * (service.max_bytes + 2_000_000)),
            metadata=(("authorization", f"Bearer {good}"),),
            timeout=30,
        )
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    ch.close()
    # A plaintext connection to the TLS server.
    assert code_of(lambda: _channel(port, good, certs, insecure=True).poll({}, 1)) == "UNAVAILABLE"
    # A blob no version references.
    assert code_of(lambda: _channel(port, good, certs).fetch("ab" * 32)) == "NOT_FOUND"
    runner.join(180)
    rounds = fleet.server.store.rounds()
    assert rounds[0]["status"] == "completed" and len(rounds[0]["survivors"]) == 2
    assert any("malformed" in r for r in service.rejections)
    assert any("not open" in r for r in service.rejections)


def test_coordinator_kill_9_mid_round_keeps_history_and_reruns_with_fresh_keys(
    tmp_path: Path, fleet_model: Path, certs: Path, ds: NamesDataset
) -> None:
    db = tmp_path / "fleet.db"
    tokens, _ = enroll_pis(tmp_path, [f"pi-{i}" for i in range(2)])
    port = 20000 + os.getpid() % 20000

    def server() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pifed",
                *server_argv(db, certs, fleet_model, port, rounds=2, stage_timeout=8),
            ],
            stdout=open(tmp_path / "server.log", "ab"),
            stderr=subprocess.STDOUT,
        )

    coordinator = server()
    folders = device_folders(ds, tmp_path, len(tokens), NAMES_PER_DEVICE, seed=1)
    edges = start_edges(port, tokens, folders, tmp_path, certs / "ca.pem")
    try:
        # Round 1 completes, then kill -9 during round 2's secure aggregation (the third
        # ShareKeys: round 1's training and quality sessions come first).
        edges[0].wait_for(lambda e: e.get("event") == "deploy", timeout=240)
        edges[0].wait_for(
            lambda e: sum(x.get("stage") == "ShareKeysRequest" for x in edges[0].events()) >= 3,
            timeout=240,
        )
        coordinator.send_signal(signal.SIGKILL)
        coordinator.wait()
        before = Store(db)
        done_before = [r for r in before.rounds() if r["status"] == "completed"]
        versions_before = [v.version for v in before.versions()]
        before.close()
        assert len(done_before) == 1
        coordinator = server()  # same db, same port: the Pis reconnect by themselves
        assert coordinator.wait(300) == 0, (tmp_path / "server.log").read_text()[-3000:]
        after = Store(db)
        rounds = after.rounds()
        statuses = [r["status"] for r in rounds]
        assert statuses[0] == "completed" and statuses[1] == "aborted", statuses
        assert "restarted" in rounds[1]["reason"]
        # --rounds 2 is the database's count: 1 before the crash, only the missing 1 after.
        assert statuses.count("completed") == 2
        assert set(versions_before) <= {v.version for v in after.versions()}
        sessions = after._db.execute("SELECT session_id, status FROM secagg_sessions").fetchall()
        assert len({s for s, _ in sessions}) == len(sessions)  # every session has fresh keys
        # Nothing is left "running", and the rounds after the restart used new sessions.
        assert "running" not in {st for _, st in sessions}
        # Round 1's, round 2's (cut by the kill) and the one missing round's after the restart.
        assert len(sessions) >= 3
        after.close()
        assert any(e.get("event") == "reconnect" for e in edges[0].events())
    finally:
        if coordinator.poll() is None:
            coordinator.kill()
        for e in edges:
            e.stop()


def test_a_one_language_pi_joins_and_a_pi_with_an_unknown_language_is_dropped_at_once(
    tmp_path: Path, fleet_model: Path, certs: Path, ds: NamesDataset
) -> None:
    """Pis in different countries: one holds Greek names only and trains with the fleet; one
    holds a language the model does not know, says so in its training reply, and is dropped
    from the session at once instead of the round waiting out the 300 s training timeout."""
    cfg = _cfg(rounds=1, min_devices=3, threshold=2, train_timeout=300.0)
    greek = np.flatnonzero(ds.labels == ds.languages.index("Greek"))
    mixed = np.random.default_rng(0).permutation(len(ds))[:NAMES_PER_DEVICE]
    unknown = tmp_path / "pi-2" / "names"
    write_device_names(ds, mixed[:50], unknown)
    (unknown / "Klingon.txt").write_text("Worf\nMartok\nGowron\n", encoding="utf-8")
    folders = [
        write_device_names(ds, greek, tmp_path / "pi-0" / "names"),
        write_device_names(ds, mixed, tmp_path / "pi-1" / "names"),
        unknown,
    ]
    assert [p.name for p in folders[0].iterdir()] == ["Greek.txt"]
    with started_fleet(tmp_path, fleet_model, certs, cfg, folders) as fleet:
        t = time.monotonic()
        (summary,) = fleet.server.coordinator.run()
        assert time.monotonic() - t < 120
        assert summary["ok"], summary
        assert summary["survivors"] == 2
        failed = [e for e in fleet.edges[2].events() if e.get("event") == "train"]
        assert failed and "Klingon" in failed[0]["error"], failed
        assert summary["device_reports"] >= 2  # the Greek-only Pi evaluated too


def test_a_native_crash_in_training_is_reported_and_the_pi_rejoins(
    tmp_path: Path, fleet_model: Path, certs: Path, ds: NamesDataset
) -> None:
    """Pi 2's worker dies of SIGSEGV inside training (as ai-edge-litert's train did on an
    emulated Pi). Its supervisor answers the training task as failed, so the coordinator
    drops it at once (not after the 300 s training timeout), and restarts the worker, which
    takes part in the next round."""
    cfg = _cfg(rounds=2, min_devices=3, threshold=2, train_timeout=300.0)
    folders = device_folders(ds, tmp_path, 3, NAMES_PER_DEVICE)
    with started_fleet(
        tmp_path, fleet_model, certs, cfg, folders, {2: {"crash_in": "train"}}
    ) as fleet:
        coordinator, pi = fleet.server.coordinator, fleet.edges[2]
        t = time.monotonic()
        first = coordinator.run_round()
        assert time.monotonic() - t < 60, "the round waited for the crashed Pi"
        assert first["ok"] and first["survivors"] == 2, first
        events = pi.events()
        crash = [e for e in events if e.get("event") == "crash"]
        assert crash == [{"event": "crash", "signal": "SIGSEGV", "task": "train"}], events
        assert any(e.get("event") == "restart" for e in events)
        assert pi.proc.poll() is None  # the Pi is still up
        deadline = time.monotonic() + 120
        while len(coordinator.live_devices()) < 3:
            assert time.monotonic() < deadline, "the restarted worker never came back"
            time.sleep(0.1)
        second = coordinator.run_round()
        assert second["ok"] and second["survivors"] == 3, second


def test_a_pi_killed_mid_training_is_dropped_once_silent_not_at_the_deadline(
    tmp_path: Path, fleet_model: Path, certs: Path, ds: NamesDataset
) -> None:
    """Pi 2 is busy training (it heartbeats, so it is not dropped however long it takes), then
    loses power (kill -9). The round completes with the other two within seconds of the kill,
    not at the 300 s training deadline."""
    cfg = _cfg(rounds=1, min_devices=3, threshold=2, train_timeout=300.0, silence_timeout=4.0)
    folders = device_folders(ds, tmp_path, 3, NAMES_PER_DEVICE)
    with started_fleet(
        tmp_path, fleet_model, certs, cfg, folders, {2: {"hang_in": "train"}}
    ) as fleet:
        runner = fleet.server.run_rounds_in_background()
        fleet.edges[2].wait_for(lambda e: e.get("event") == "fault_hang")
        time.sleep(8)  # twice the silence timeout: a busy, heartbeating Pi is not dropped
        assert not fleet.at("device_gone"), fleet.events
        assert runner.is_alive()
        fleet.edges[2].kill()
        killed = time.monotonic()
        runner.join(timeout=120)
        ends = fleet.at("round_end")
        assert ends and ends[0][0] - killed < 20, (ends, killed)
        assert ends[0][1]["ok"] and ends[0][1]["survivors"] == 2, ends
        gone = fleet.at("device_gone")
        assert gone and gone[0][0] - killed < cfg.silence_timeout + 3
        print(
            f"kill -9 mid-training: dropped {gone[0][0] - killed:.1f} s after the kill "
            f"(silence timeout {cfg.silence_timeout:.0f} s), round done {ends[0][0] - killed:.1f} s"
        )
