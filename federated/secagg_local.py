"""An in-process secure-aggregation round with an injectable clock.

Every :class:`~edge.secagg.ClientProtocol` and the :class:`~federated.secagg_server.ServerProtocol`
live in one process; :class:`LocalRound` relays each stage's requests and replies between them
over real bytes (``to_bytes`` / ``decode_message``), records the transcript, the bytes each
client sent and received and the time each side spent per stage, and moves a
:class:`~edge.secagg.ManualClock` past the stage deadline when a client stays silent, so dropouts
and timeouts happen exactly where the caller says.

Why it is here, in the wheel: four places drive such rounds -- the server tests
(tests/federated/test_secagg_server.py), the known-answer digests checked on every
architecture (tests/arm64/secagg_driver.py, run by an emulated aarch64 Python that has only the
pifed wheel's ``model``, ``edge`` and ``federated`` installed: no pytest, no TensorFlow, no
checkout on the path) and the secure-aggregation benchmark (benchmarks/suite/secagg_bench.py).
A module of an installed package is the one place all of them can import. It belongs to
``federated`` rather than ``edge`` because it needs the server (``edge`` never imports
``federated``); the clock alone lives in :mod:`edge.secagg.randomness`, so the client's tests
need nothing from here. Imports: the standard library, numpy and the two state machines only.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from edge.secagg import (
    ClientMessage,
    ClientProtocol,
    DeterministicRandom,
    ManualClock,
    MaskedInputRequest,
    SecAggConfig,
    SecAggError,
    ServerMessage,
    Stage,
    decode_message,
)
from edge.secagg.identity import Identity, SigningKey, issue_certificate
from federated.secagg_result import AggregateResult
from federated.secagg_server import ServerProtocol

__all__ = ["LATE", "LocalRound", "ManualClock", "TestAuthority", "seeded_parties"]

#: How far past a stage's deadline the clock is moved when someone did not answer.
LATE = 1e-3


class TestAuthority:
    """An in-process enrollment authority for simulations, benchmarks and tests.

    Deterministic from ``seed``: the authority key and each device key come from
    :class:`DeterministicRandom` streams, so known-answer transcripts stay fixed. Never a
    fleet's authority (``pifed enroll`` makes that one, and keeps its key out of the process).
    """

    __test__ = False  # not a pytest class

    def __init__(self, seed: bytes = b"pifed-secagg test authority") -> None:
        self._seed = bytes(seed)
        self.key = SigningKey.generate(DeterministicRandom(self._seed + b"/authority"))

    @property
    def public(self) -> bytes:
        """The authority's public key, as every device pins it."""
        return self.key.public

    def identity(self, device_id: int) -> Identity:
        """Device ``device_id``'s signing key and certificate (the same on every call)."""
        rng = DeterministicRandom(self._seed + b"/device/" + str(device_id).encode())
        device = SigningKey.generate(rng)
        cert = issue_certificate(self.key, device_id, f"pi-{device_id}", device.public)
        return Identity(device, cert, self.public)


def seeded_parties(
    config: SecAggConfig,
    server_seed: bytes,
    client_seed: Callable[[int], bytes],
    clock: ManualClock,
    authority: TestAuthority | None = None,
) -> tuple[ServerProtocol, dict[int, ClientProtocol]]:
    """A server and every client, each on its own :class:`DeterministicRandom` seed.

    The same seeds give the same bytes on every machine: that is what the known-answer digests
    rest on. With ``config.active`` every client gets an identity of ``authority`` (a fresh
    default :class:`TestAuthority` when None), so the actively secure protocol runs in-process.
    """
    if not config.active:
        server = ServerProtocol(config, DeterministicRandom(server_seed), clock)
        clients = {
            cid: ClientProtocol(cid, config, DeterministicRandom(client_seed(cid)), clock)
            for cid in config.client_ids
        }
        return server, clients
    ca = authority if authority is not None else TestAuthority()
    server = ServerProtocol(config, DeterministicRandom(server_seed), clock, authority=ca.public)
    clients = {
        cid: ClientProtocol(
            cid, config, DeterministicRandom(client_seed(cid)), clock, identity=ca.identity(cid)
        )
        for cid in config.client_ids
    }
    return server, clients


class LocalRound:
    """Drives one session between ``server`` and ``clients`` over bytes, stage by stage.

    ``inputs[cid]`` is the vectors client ``cid`` masks and ``examples[cid]`` its weight.
    Clients in ``silent[stage]`` receive that stage's request but never answer it. With
    ``catch``, a :class:`SecAggError` raised by a client or by the server is recorded in
    ``client_errors`` / ``server_errors`` and the round goes on (the tests of refusals); a
    client that refused is reported to the server at once (``ServerProtocol.drop``), as the
    fleet's error reply does; without ``catch``, the error propagates. ``tamper_request`` /
    ``tamper_reply`` may replace a message on its way (the tests of a dishonest relay).
    """

    def __init__(
        self,
        server: ServerProtocol,
        clients: Mapping[int, ClientProtocol],
        clock: ManualClock,
        inputs: Mapping[int, Sequence[np.ndarray]],
        examples: Mapping[int, int],
        *,
        catch: bool = False,
    ) -> None:
        self.server = server
        self.clients = dict(clients)
        self.clock = clock
        self.inputs = inputs
        self.examples = examples
        self.catch = catch
        self.silent: dict[Stage, set[int]] = defaultdict(set)
        self.tamper_request: Callable[[int, ServerMessage], ServerMessage] | None = None
        self.tamper_reply: Callable[[ClientMessage], ClientMessage] | None = None
        self.transcript: list[bytes] = []
        self.to_server: list[bytes] = []
        self.client_errors: dict[int, SecAggError] = {}
        self.server_errors: list[SecAggError] = []
        self.client_s: dict[Stage, dict[int, float]] = defaultdict(dict)
        self.server_s: dict[Stage, float] = defaultdict(float)
        self.sent: dict[int, int] = defaultdict(int)
        self.received: dict[int, int] = defaultdict(int)
        self.outbox: dict[int, ServerMessage] = {}

    def start(self) -> dict[int, ServerMessage]:
        """Open the session: the server's first requests, timed as the first stage's."""
        t0 = time.perf_counter()
        self.outbox = self.server.start()
        assert self.server.stage is not None
        self.server_s[self.server.stage] += time.perf_counter() - t0
        return self.outbox

    def client_input(self, cid: int) -> list[np.ndarray]:
        """The vectors client ``cid`` masks (read when it is asked, so a test may change them)."""
        return list(self.inputs[cid])

    def answer(self, cid: int, data: bytes) -> ClientMessage | None:
        """Client ``cid``'s reply to the request ``data``; None if it refused (``catch``)."""
        client = self.clients[cid]
        try:
            request = decode_message(data)
            update = self.client_input(cid) if isinstance(request, MaskedInputRequest) else None
            return client.respond(request, update, self.examples[cid])
        except SecAggError as exc:
            if not self.catch:
                raise
            self.client_errors[cid] = exc
            if self.server.stage is not None and self.server.aborted is None:
                self.server.drop(cid)  # the client says so at once, as a fleet error reply does
            return None

    def step(self) -> None:
        """Relay one stage: requests out, replies in, the clock past the deadline if needed.

        A request broadcast to several clients as one message object is encoded once, as a
        server would.
        """
        stage = self.server.stage
        assert stage is not None
        encoded: dict[int, tuple[ServerMessage, bytes]] = {}  # id -> (message kept alive, bytes)
        replies = []
        refused = len(self.client_errors)
        for cid, message in self.outbox.items():
            t0 = time.perf_counter()
            if self.tamper_request is not None:
                message = self.tamper_request(cid, message)
            if id(message) not in encoded:
                encoded[id(message)] = (message, message.to_bytes())
            data = encoded[id(message)][1]
            self.server_s[stage] += time.perf_counter() - t0
            self.transcript.append(data)
            self.received[cid] += len(data)
            if cid in self.silent[stage]:
                continue
            t0 = time.perf_counter()
            reply = self.answer(cid, data)
            if reply is None:
                continue
            if self.tamper_reply is not None:
                reply = self.tamper_reply(reply)
            out = reply.to_bytes()
            self.client_s[stage][cid] = time.perf_counter() - t0
            self.sent[cid] += len(out)
            replies.append(out)
        accepted = 0
        t0 = time.perf_counter()
        for data in replies:
            self.transcript.append(data)
            self.to_server.append(data)
            try:
                self.server.receive(data)
                accepted += 1
            except SecAggError as exc:
                if not self.catch:
                    raise
                self.server_errors.append(exc)
        refused = len(self.client_errors) - refused  # reported to the server at once
        if accepted + refused < len(self.outbox):
            self.clock.now = self.server.deadline + LATE  # the rest never answer in time
        self.outbox = self.server.poll()
        self.server_s[stage] += time.perf_counter() - t0

    def run_until(self, stage: Stage) -> None:
        """Relay stages until the server is collecting ``stage``."""
        while self.server.stage != stage:
            self.step()

    def run(self) -> AggregateResult:
        """Relay every remaining stage (opening the session first if need be); the result."""
        if self.server.stage is None and not self.server.finished:
            self.start()
        while not self.server.finished:
            self.step()
        return self.server.result
