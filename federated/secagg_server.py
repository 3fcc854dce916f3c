"""The coordinator's half of secure aggregation (Bonawitz et al., CCS 2017, Fig. 4).

:class:`ServerProtocol` is a transport-free state machine over the message objects of
:mod:`edge.secagg.messages`. A transport drives one round like this::

    server = ServerProtocol(config, rng, clock)
    outbox = server.start()                  # {client_id: AdvertiseKeysRequest}
    while not server.finished:
        deliver(outbox)                      # send each message (or its .to_bytes()) to its client
        for reply in incoming():             # client replies, as objects or bytes
            try:
                server.receive(reply)
            except SecAggError as exc:       # rejected; the sender may have been dropped
                log(exc)
        outbox = server.poll()               # {} until the stage is complete or its deadline passed
    result = server.result

Each stage closes when every expected client has replied or its deadline (from the injected
clock) passes; clients that have not replied by then are dropped. In the actively secure variant
(``config.active``) the server checks every advertised certificate against the enrollment
authority and every signature, so a bad client is dropped and named at once, and it runs the
ConsistencyCheck round between masked-input collection and unmasking.

Robustness. A reply that fails its stage's check (:mod:`federated.secagg_reply_checks`) drops
its sender and names it in ``culprits``; at unmasking that is a revealed share that does not
match its dealer's commitment, so the round finishes with the other responders when at least
``t`` good ones remain. A client that cannot open a peer's shares accuses it; the accusations
are settled by :mod:`federated.secagg_accusations`. :mod:`federated.secagg_unmask` rebuilds the
secrets and strips the masks, :mod:`federated.secagg_result` decodes the sum. Fewer than ``t``
clients left at any stage aborts the round with :class:`TooFewSurvivors` before anything is
revealed. A coordinator restart is a new ``ServerProtocol``: a fresh nonce, so a fresh session
with fresh client keys; nothing of the old session verifies in it.

The server only ever holds masked vectors, the sum, the self-mask seeds ``b_u`` of survivors
and the masking keys ``s_u^SK`` of clients that dropped before submitting -- never both secrets
of one client, which is what keeps each individual update hidden.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from edge.secagg.config import SecAggConfig
from edge.secagg.errors import (
    ConfigError,
    ReplayError,
    RoundAborted,
    SecAggError,
    StageError,
    StageTimeout,
    TooFewSurvivors,
    UnknownClient,
)
from edge.secagg.identity import VerifyingKey
from edge.secagg.messages import (
    AdvertiseKeysReply,
    AdvertiseKeysRequest,
    ClientMessage,
    ConsistencyCheckReply,
    ConsistencyCheckRequest,
    MaskedInputReply,
    MaskedInputRequest,
    ServerMessage,
    ShareKeysReply,
    ShareKeysRequest,
    UnmaskReply,
    UnmaskRequest,
)
from edge.secagg.randomness import Clock, RandomSource, system_random
from edge.secagg.session import NONCE_SIZE, session_id
from edge.secagg.stages import Stage
from federated.secagg_accusations import settle_accusations
from federated.secagg_reply_checks import (
    check_advertised_keys,
    check_consistency,
    check_masked_input,
    check_reply_type,
    check_session,
    check_share_set,
    check_unmask_reply,
)
from federated.secagg_result import AggregateResult, decode_aggregate
from federated.secagg_unmask import unmask_sum

__all__ = ["ServerProtocol"]


class ServerProtocol:
    """The coordinator's state machine for one secure-aggregation session.

    ``authority`` is the enrollment authority's Ed25519 public key; the actively secure variant
    needs it (ConfigError otherwise) to check every client's certificate and signatures.
    """

    def __init__(
        self,
        config: SecAggConfig,
        rng: RandomSource | None = None,
        clock: Clock | None = None,
        *,
        authority: bytes | None = None,
    ) -> None:
        if not isinstance(config, SecAggConfig):
            raise TypeError(f"config must be a SecAggConfig, got {type(config).__name__}")
        if rng is not None and not callable(rng):
            raise TypeError("rng must be a callable rng(n) -> bytes, or None for the OS CSPRNG")
        if clock is not None and not callable(clock):
            raise TypeError("clock must be a callable returning seconds, or None")
        if config.active and authority is None:
            raise ConfigError(
                "the actively secure protocol (SecAggConfig.active) needs the enrollment "
                "authority's public key to check the devices' certificates: pass authority=, "
                "or use active=False for the semi-honest variant"
            )
        self._config = config
        self._authority = authority if config.active else None
        self._rng: RandomSource = rng if rng is not None else system_random
        self._clock: Clock = clock if clock is not None else time.monotonic
        self._stage: Stage | None = None
        self._deadline = 0.0
        self._nonce = b""
        self._session_id = b""
        self._aborted: str | None = None
        self._result: AggregateResult | None = None
        self._dropped: dict[int, Stage] = {}
        self._culprits: dict[int, str] = {}
        self._expected: set[int] = set()
        self._received: set[int] = set()
        self._keys: dict[int, tuple[bytes, bytes]] = {}
        self._signed: dict[int, tuple[bytes, bytes]] = {}  # id -> (certificate, signature)
        self._signers: dict[int, VerifyingKey] = {}  # id -> device signing key
        self._holders: tuple[int, ...] = ()
        self._share_replies: dict[int, ShareKeysReply] = {}
        self._masked: dict[int, np.ndarray] = {}
        self._accusations: dict[int, tuple[int, ...]] = {}
        # accused -> the survivors that masked without it
        self._accusers: Mapping[int, set[int]] = {}
        self._alive: tuple[int, ...] = ()
        self._acc: np.ndarray = np.zeros(0, dtype=config.quantisation.dtype)
        self._consistency: dict[int, bytes] = {}
        self._unmask_request: UnmaskRequest | None = None
        self._unmask_replies: dict[int, UnmaskReply] = {}

    # -- state --------------------------------------------------------------------------------

    @property
    def stage(self) -> Stage | None:
        """The stage currently collecting replies (None before start and after the end)."""
        return self._stage

    @property
    def finished(self) -> bool:
        """True once the result is available."""
        return self._result is not None

    @property
    def aborted(self) -> str | None:
        """Why the round aborted, or None."""
        return self._aborted

    @property
    def deadline(self) -> float:
        """Clock time at which the current stage closes."""
        return self._deadline

    @property
    def session_id(self) -> bytes | None:
        """The session id, known once AdvertiseKeys closed."""
        return self._session_id or None

    @property
    def dropped(self) -> Mapping[int, Stage]:
        """Clients dropped so far, with the stage at which they dropped or were rejected."""
        return dict(self._dropped)

    @property
    def culprits(self) -> Mapping[int, str]:
        """Clients excluded for misbehaviour so far, with the reason (each is in ``dropped``)."""
        return dict(self._culprits)

    @property
    def result(self) -> AggregateResult:
        """The aggregate; raises RoundAborted / StageError if there is none."""
        if self._aborted is not None:
            raise RoundAborted(f"the round was aborted: {self._aborted}")
        if self._result is None:
            raise StageError("the round has not finished; keep delivering replies and polling")
        return self._result

    # -- driving ------------------------------------------------------------------------------

    def start(self) -> dict[int, ServerMessage]:
        """Open a fresh session: a new round nonce, broadcast to every configured client."""
        if self._stage is not None or self._aborted is not None or self._result is not None:
            raise StageError("start() was already called; build a new ServerProtocol per session")
        self._nonce = self._rng(NONCE_SIZE)
        if len(self._nonce) != NONCE_SIZE:
            raise ValueError(f"rng returned {len(self._nonce)} bytes, expected {NONCE_SIZE}")
        request = AdvertiseKeysRequest(self._nonce, self._config.digest)
        self._open(Stage.ADVERTISE_KEYS, set(self._config.client_ids))
        return {cid: request for cid in self._config.client_ids}

    def abort(self, reason: str) -> None:
        """Abort the session (e.g. the coordinator is shutting down); nothing more is revealed."""
        if self._aborted is None:
            self._aborted = reason
        self._stage = None
        self._acc = np.zeros(0, dtype=self._config.quantisation.dtype)
        self._masked = {}
        self._unmask_replies = {}

    def drop(self, client_id: int) -> None:
        """Stop waiting for a client that said it cannot go on (its local task failed).

        It counts as dropped at the current stage, exactly as if its deadline had passed, so the
        stage closes as soon as the others have answered. Unknown or already finished clients
        are ignored: a drop never adds anyone.
        """
        self._check_live()
        if client_id in self._expected and client_id not in self._received:
            assert self._stage is not None
            self._expected.discard(client_id)
            self._dropped[client_id] = self._stage

    def receive(
        self,
        message: ClientMessage | bytes | bytearray | memoryview,
        sender: int | None = None,
    ) -> None:
        """Accept one client reply for the current stage, or raise why it was rejected.

        ``sender`` is the client id the transport authenticated (the fleet: the enrolled device
        the connection belongs to); a message whose ``client_id`` differs is rejected without
        dropping anyone. Replays, late messages and messages of other sessions raise without
        changing anything. A reply whose content is invalid (bad certificate or signature, bad
        key, wrong shape, a share that fails its commitment, ...) raises, drops its sender from
        the round and names it in ``culprits``; the other clients are unaffected.
        """
        self._check_live()
        stage = self._stage
        assert stage is not None
        msg = check_reply_type(message, stage)
        cid = msg.client_id
        if sender is not None and cid != sender:
            raise UnknownClient(
                f"device {sender} sent a message in the name of client {cid}; a device may only "
                "speak for itself (rejected, nobody dropped)"
            )
        if cid not in self._config.client_ids:
            raise UnknownClient(f"client {cid} is not in the configured client set")
        if self._clock() > self._deadline:
            raise StageTimeout(
                f"{stage.name} closed at its deadline; the reply of client {cid} came too late"
            )
        check_session(msg, self._nonce, self._session_id)
        if cid in self._received:
            raise ReplayError(f"client {cid} already replied in {stage.name}; replay ignored")
        if cid not in self._expected:
            raise StageError(
                f"client {cid} is not part of {stage.name} (it dropped or was rejected earlier)"
            )
        try:
            self._accept(msg)
        except SecAggError as exc:
            self._expected.discard(cid)
            self._dropped[cid] = stage
            self._culprits[cid] = f"{stage.name}: {exc}"
            raise
        self._received.add(cid)

    def poll(self) -> dict[int, ServerMessage]:
        """Close the stage if complete or past its deadline; return the next stage's messages.

        Returns ``{}`` while the stage is still open and after the round finished. Raises
        TooFewSurvivors (the round aborts) if fewer than ``t`` clients remain.
        """
        if self._result is not None:
            return {}
        self._check_live()
        if self._received != self._expected and self._clock() <= self._deadline:
            return {}
        stage = self._stage
        assert stage is not None
        for cid in self._expected - self._received:
            self._dropped[cid] = stage
        survivors = sorted(self._received)
        try:
            self._need(len(survivors), f"completed {stage.name}")
            return self._close(stage, survivors)
        except SecAggError as exc:
            self.abort(str(exc))
            raise

    # -- internals ----------------------------------------------------------------------------

    def _need(self, count: int, what: str) -> None:
        if count < self._config.t:
            raise TooFewSurvivors(
                f"only {count} clients {what}, threshold is {self._config.t}; the round aborted "
                "and revealed nothing"
            )

    def _check_live(self) -> None:
        if self._aborted is not None:
            raise RoundAborted(f"the round was aborted ({self._aborted}); start a new session")
        if self._stage is None:
            raise StageError("the session has not started (call start()) or has finished")

    def _open(self, stage: Stage, expected: set[int]) -> None:
        self._stage = stage
        self._expected = set(expected)
        self._received = set()
        self._deadline = self._clock() + self._config.timeouts.for_stage(stage)

    def _accept(self, msg: ClientMessage) -> None:
        cid = msg.client_id
        if isinstance(msg, AdvertiseKeysReply):
            signer = check_advertised_keys(
                msg, self._config.digest, self._nonce, self._keys, self._authority
            )
            if signer is not None:
                self._signed[cid] = (msg.certificate, msg.signature)
                self._signers[cid] = signer
            self._keys[cid] = (msg.c_public, msg.s_public)
        elif isinstance(msg, ShareKeysReply):
            check_share_set(msg, self._holders)
            self._share_replies[cid] = msg
        elif isinstance(msg, MaskedInputReply):
            peers = set(self._share_replies) - {cid}
            # Summed when the stage closes: an accused client's vector must stay out of the sum.
            self._masked[cid] = check_masked_input(msg, self._config.quantisation, peers)
            self._accusations[cid] = tuple(msg.accused)
        elif isinstance(msg, ConsistencyCheckReply):
            check_consistency(msg, self._signers[cid], self._session_id, self._alive)
            self._consistency[cid] = msg.signature
        else:
            assert isinstance(msg, UnmaskReply)
            request = self._unmask_request
            assert request is not None
            check_unmask_reply(msg, request, self._accusers, self._share_replies, self._session_id)
            self._unmask_replies[cid] = msg

    def _exclude(self, cid: int, stage: Stage, reason: str) -> None:
        self._dropped[cid] = stage
        self._culprits[cid] = reason

    def _close(self, stage: Stage, survivors: list[int]) -> dict[int, ServerMessage]:
        config = self._config
        if stage == Stage.ADVERTISE_KEYS:
            keys = tuple((cid, *self._keys[cid]) for cid in survivors)
            signed = tuple(self._signed[cid] for cid in survivors) if self._authority else ()
            self._keys = {cid: self._keys[cid] for cid in survivors}
            self._holders = tuple(survivors)
            self._session_id = session_id(config.digest, self._nonce, keys)
            share_request = ShareKeysRequest(self._nonce, config.digest, keys, signed)
            self._open(Stage.SHARE_KEYS, set(survivors))
            return {cid: share_request for cid in survivors}
        if stage == Stage.SHARE_KEYS:
            by_sender = {
                sender: {item.peer: item for item in self._share_replies[sender].shares}
                for sender in survivors
            }
            outbox: dict[int, ServerMessage] = {}
            for cid in survivors:
                # The same sealed share set, now naming its sender instead of its recipient.
                relayed = tuple(
                    replace(by_sender[sender][cid], peer=sender)
                    for sender in survivors
                    if sender != cid
                )
                outbox[cid] = MaskedInputRequest(cid, self._session_id, relayed)
            self._share_replies = {cid: self._share_replies[cid] for cid in survivors}
            self._open(Stage.MASKED_INPUT_COLLECTION, set(survivors))
            return outbox
        if stage == Stage.MASKED_INPUT_COLLECTION:
            alive = self._settle_accusations(survivors)
            self._need(len(alive), "are left after excluding the accused")
            self._alive = tuple(alive)
            if self._authority is not None:
                check = ConsistencyCheckRequest(self._session_id, self._alive)
                self._open(Stage.CONSISTENCY_CHECK, set(alive))
                return {cid: check for cid in alive}
            return self._request_unmask(alive, ())
        if stage == Stage.CONSISTENCY_CHECK:
            signatures = tuple((cid, self._consistency[cid]) for cid in survivors)
            return self._request_unmask(survivors, signatures)
        self._finish(survivors)
        return {}

    def _settle_accusations(self, survivors: list[int]) -> list[int]:
        """Exclude who the survivors' accusations convict; sum the vectors of those left."""
        verdict = settle_accusations(survivors, self._accusations, self._config.c)
        for cid, reason in verdict.excluded:
            self._exclude(cid, Stage.MASKED_INPUT_COLLECTION, reason)
        self._accusers = verdict.accusers
        alive = [cid for cid in survivors if cid not in self._culprits]
        quant = self._config.quantisation
        self._acc = np.zeros(quant.word_count, dtype=quant.dtype)
        for cid in alive:
            np.add(self._acc, self._masked[cid], out=self._acc)
        self._masked = {}
        return alive

    def _request_unmask(
        self, responders: list[int], signatures: tuple[tuple[int, bytes], ...]
    ) -> dict[int, ServerMessage]:
        dropped = tuple(sorted(set(self._share_replies) - set(self._alive)))
        request = UnmaskRequest(self._session_id, self._alive, dropped, signatures)
        self._unmask_request = request
        self._open(Stage.UNMASKING, set(responders))
        return {cid: request for cid in responders}

    def _finish(self, responders: list[int]) -> None:
        config = self._config
        request = self._unmask_request
        assert request is not None
        ring_sum = unmask_sum(
            self._acc,
            config=config,
            session_id=self._session_id,
            request=request,
            holders=self._holders,
            replies={cid: self._unmask_replies[cid] for cid in responders},
            dealt=self._share_replies,
            keys=self._keys,
            accusers=self._accusers,
        )
        self._result = decode_aggregate(
            ring_sum, config, tuple(request.alive), dict(self._dropped), dict(self._culprits)
        )
        self._stage = None
        self._share_replies = {}
        self._unmask_replies = {}
