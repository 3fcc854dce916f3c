"""Helpers for fleet tests: real `pifed edge` subprocesses against a real coordinator."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.device_token import write_token_file
from edge.secagg.identity import SigningKey
from federated.authority import enroll_local
from federated.coordinator import FleetConfig
from federated.fleet import FleetServer
from federated.gate import GateConfig
from federated.store import Store
from model.dataset import NamesDataset, write_names
from model.partition import partition
from model.split import split_by_name

# A device's private names folder in the data set's layout (the product's own writer).
write_device_names = write_names

#: A gate that promotes every candidate: for runs that time or drill rounds, not judge them.
PROMOTE_ALL = GateConfig(
    min_accuracy=0.0, tolerance=1.0, min_balanced_accuracy=0.0, balanced_tolerance=1.0
)
#: :data:`PROMOTE_ALL` as `pifed server` flags.
PROMOTE_ALL_FLAGS = (
    "--gate-min-accuracy", "0", "--gate-tolerance", "1",
    "--gate-min-balanced-accuracy", "0", "--gate-balanced-tolerance", "1",
)  # fmt: skip


class Edge:
    """One `pifed edge` subprocess with its event log."""

    def __init__(
        self,
        name: str,
        port: int,
        token: str,
        data: Path,
        root: Path,
        ca: Path | None,
        seed: int = 0,
        exit_after: str | None = None,
        crash_in: str | None = None,
        hang_in: str | None = None,
        identity: Path | None = None,
    ) -> None:
        self.name = name
        self.log = root / f"{name}.log"
        self.state = root / name / "state"
        tls = ["--ca", str(ca)] if ca else ["--insecure"]
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pifed",
                "edge",
                "--server",
                f"127.0.0.1:{port}",
                "--token-file",
                str(write_token_file(root / name / "token", token)),
                "--data",
                str(data),
                "--state",
                str(self.state),
                *tls,
                "--identity",
                str(identity or root / name / "identity"),
                "--seed",
                str(seed),
                *(["--fault-exit-after", exit_after] if exit_after else []),
                *(["--fault-crash-in", crash_in] if crash_in else []),
                *(["--fault-hang-in", hang_in] if hang_in else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "wb"),  # noqa: SIM115
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )

    def events(self) -> list[dict[str, Any]]:
        """Every JSON event line the edge wrote so far."""
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(json.JSONDecodeError):
                    out.append(json.loads(line))
        return out

    def wait_for(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 120) -> None:
        """Block until an event matches (or fail with the log)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(pred(e) for e in self.events()):
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)
        raise AssertionError(
            f"{self.name}: no matching event in {timeout} s:\n{self.log.read_text()[-3000:]}"
        )

    def kill(self) -> None:
        """SIGKILL, as a Pi losing power."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def start_edges(
    port: int,
    tokens: list[str],
    folders: list[Path],
    root: Path,
    ca: Path,
    edge_kw: dict[int, dict[str, Any]] | None = None,
) -> list[Edge]:
    """One `pifed edge` per token: Pi ``i`` is ``pi-i`` (seed ``i``) holding ``folders[i]``,
    ``edge_kw[i]`` its fault flags. If one fails to start, those already started are stopped."""
    edges: list[Edge] = []
    try:
        for i, (tok, folder) in enumerate(zip(tokens, folders, strict=True)):
            kw = (edge_kw or {}).get(i, {})
            edges.append(Edge(f"pi-{i}", port, tok, folder, root, ca, seed=i, **kw))
    except BaseException:
        for e in edges:
            e.stop()
        raise
    return edges


def server_argv(
    db: Path, certs: Path, model: Path, port: int, rounds: int, stage_timeout: float, *extra: str
) -> list[str]:
    """``pifed server`` as the fleet-process tests start it: TLS from ``certs``, ``model``, on
    loopback ``port``, ``rounds`` rounds, a gate that promotes every round
    (:data:`PROMOTE_ALL_FLAGS`), ``extra`` flags, and exit once the rounds are done."""
    return [
        "server", "--db", str(db), "--certs", str(certs), "--model", str(model),
        "--listen", f"127.0.0.1:{port}", "--rounds", str(rounds), *PROMOTE_ALL_FLAGS,
        "--stage-timeout", str(stage_timeout), *extra, "--exit-after-rounds",
    ]  # fmt: skip


def enroll_pis(root: Path, names: list[str]) -> tuple[list[str], SigningKey]:
    """Enroll each Pi as an operator would (its key made in ``root/NAME/identity``, certified
    by a fresh authority); returns the tokens and the authority key."""
    authority = SigningKey.generate()
    store = Store(root / "fleet.db")
    try:
        tokens = [enroll_local(store, n, authority, root / n / "identity") for n in names]
    finally:
        store.close()
    return tokens, authority


def enroll_with_cli(pifed: Callable[..., str], db: Path, root: Path, names: list[str]) -> list[str]:
    """Enroll each Pi through the CLI exactly as the README tells an operator: ``pifed authority
    init``, ``pifed edge --init-identity`` on the Pi, ``pifed enroll --public-key ...
    --authority-key``, then the certificate and authority.pub copied beside device.key.
    ``pifed(*args)`` runs the CLI (TF-blocked, or on the emulated Pi) and returns its stdout;
    returns the tokens."""
    authority = root / "authority"
    pifed("authority", "init", "--out", str(authority))
    tokens = []
    for name in names:
        identity = root / name / "identity"
        public = pifed("edge", "--init-identity", "--identity", str(identity)).split()[0]
        token = pifed(
            "enroll", "--db", str(db), name, "--public-key", public,
            "--authority-key", str(authority / "authority.key"),
            "--cert-out", str(identity / "device.cert"),
        ).strip()  # fmt: skip
        (identity / "authority.pub").write_bytes((authority / "authority.pub").read_bytes())
        tokens.append(token)
    return tokens


def iid_device_folders(ds: NamesDataset, root: Path, n: int) -> list[Path]:
    """``n`` private names folders (``root/pi-i/names``) of an iid share each of the training
    names (80% by name, seed 0), each share's own holdout included, as the benchmarks deal
    them."""
    train, _ = split_by_name(ds, 0.2, 0)
    parts = partition(ds, train, n, "iid", 0)
    return [
        write_device_names(ds, np.concatenate([p.train, p.holdout]), root / f"pi-{i}" / "names")
        for i, p in enumerate(parts)
    ]


def device_folders(
    ds: NamesDataset, root: Path, n: int, per_device: int = 300, seed: int = 0
) -> list[Path]:
    """``n`` private names folders of ``per_device`` names each (one seeded permutation)."""
    rows = np.random.default_rng(seed).permutation(len(ds))
    return [
        write_device_names(
            ds, rows[i * per_device : (i + 1) * per_device], root / f"pi-{i}" / "names"
        )
        for i in range(n)
    ]


@dataclass
class RunningFleet:
    """A coordinator in this process (its events time-stamped) and its edge subprocesses."""

    server: FleetServer
    edges: list[Edge]
    events: list[tuple[float, dict[str, Any]]]

    def at(self, kind: str) -> list[tuple[float, dict[str, Any]]]:
        """The events of this kind so far, with when they happened."""
        return [(t, e) for t, e in list(self.events) if e.get("event") == kind]


@contextlib.contextmanager
def started_fleet(
    root: Path,
    model: Path,
    certs: Path,
    cfg: FleetConfig,
    folders: list[Path],
    edge_kw: dict[int, dict[str, Any]] | None = None,
    connect_timeout: float = 120,
) -> Iterator[RunningFleet]:
    """Enroll one Pi per folder, start the coordinator and the Pis (``edge_kw[i]`` holds Pi
    ``i``'s fault flags), and wait until every Pi is connected; stop everything on exit."""
    tokens, _ = enroll_pis(root, [f"pi-{i}" for i in range(len(folders))])
    events: list[tuple[float, dict[str, Any]]] = []
    server = FleetServer.start(
        root / "fleet.db",
        model,
        cfg,
        "127.0.0.1:0",
        certs,
        on_event=lambda e: events.append((time.monotonic(), e)),
    )
    try:
        edges = start_edges(server.port, tokens, folders, root, certs / "ca.pem", edge_kw)
    except BaseException:
        server.close()
        raise
    try:
        deadline = time.monotonic() + connect_timeout
        while len(server.coordinator.live_devices()) < len(folders):
            assert time.monotonic() < deadline, "the edge processes never all connected"
            time.sleep(0.1)
        yield RunningFleet(server, edges, events)
    finally:
        for e in edges:
            e.stop()
        server.close()
