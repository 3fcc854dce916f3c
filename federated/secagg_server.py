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

Robustness. Every share a client deals carries the dealer's commitment, which its recipient
checks on opening; at unmasking the server checks every revealed share against it, so a bad
share is pinned on the responder that sent it (dropped, named in ``culprits``) and the round
finishes with the other responders when at least ``t`` good ones remain. A client that cannot
open a peer's shares accuses it in its MaskedInputReply: the accused is excluded (named in
``culprits``), unless its accuser accused more than ``c`` peers -- more than the colluders the
config assumes -- in which case the accuser is excluded instead. Fewer than ``t`` clients left
at any stage aborts the round with :class:`TooFewSurvivors` before anything is revealed. A
coordinator restart is a new ``ServerProtocol``: a fresh nonce, so a fresh session with fresh
client keys; nothing of the old session verifies in it.

The server only ever holds masked vectors, the sum, the self-mask seeds ``b_u`` of survivors
and the masking keys ``s_u^SK`` of clients that dropped before submitting -- never both secrets
of one client, which is what keeps each individual update hidden.

Why one file of over 400 lines: the server's stages share the session's state (who is
expected, who dropped at which stage, the running masked sum) and its invariants; it is read
top to bottom against Fig. 4 of the paper, as the client's half is.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from edge.secagg.aead import TAG_SIZE
from edge.secagg.client import SHARE_PLAINTEXT_SIZE
from edge.secagg.config import SecAggConfig
from edge.secagg.errors import (
    BadSignature,
    CertificateError,
    ConfigError,
    DTypeError,
    DuplicatePublicKey,
    MalformedMessage,
    ReplayError,
    RoundAborted,
    SecAggError,
    SessionMismatch,
    ShapeError,
    ShareVerificationError,
    StageError,
    StageTimeout,
    TooFewSurvivors,
    UnknownClient,
    ValueOutOfRange,
)
from edge.secagg.identity import DeviceCertificate, VerifyingKey, verify_certificate
from edge.secagg.keys import X25519KeyPair, validate_public_key
from edge.secagg.masking import add_prg, reduce_mod, unmask_dropped
from edge.secagg.messages import (
    AdvertiseKeysReply,
    AdvertiseKeysRequest,
    ClientMessage,
    ConsistencyCheckReply,
    ConsistencyCheckRequest,
    EncryptedShare,
    MaskedInputReply,
    MaskedInputRequest,
    ServerMessage,
    ShareKeysReply,
    ShareKeysRequest,
    UnmaskReply,
    UnmaskRequest,
    decode_message,
)
from edge.secagg.quantize import dequantise
from edge.secagg.randomness import Clock, RandomSource, system_random
from edge.secagg.session import (
    NONCE_SIZE,
    SHARE_OF_KEY,
    SHARE_OF_SEED,
    advertise_statement,
    consistency_statement,
    self_mask_commitment,
    session_id,
    share_commitment,
)
from edge.secagg.shamir import ShareCombiner
from edge.secagg.stages import Stage

__all__ = ["AggregateResult", "ServerProtocol"]

_REPLY_TYPES: dict[Stage, type] = {
    Stage.ADVERTISE_KEYS: AdvertiseKeysReply,
    Stage.SHARE_KEYS: ShareKeysReply,
    Stage.MASKED_INPUT_COLLECTION: MaskedInputReply,
    Stage.CONSISTENCY_CHECK: ConsistencyCheckReply,
    Stage.UNMASKING: UnmaskReply,
}
_CLIENT_TYPES = (
    AdvertiseKeysReply,
    ShareKeysReply,
    MaskedInputReply,
    ConsistencyCheckReply,
    UnmaskReply,
)


@dataclass(frozen=True, eq=False)
class AggregateResult:
    """What the server learns: the survivors' weighted sum, their weight sum, and who took part.

    ``weighted_sum[i]`` approximates sum over survivors of ``w_u * clip(x_u[i])`` to within
    ``len(survivors) * config.quantisation.error_bound`` per coordinate; ``ring_sum`` is the exact
    sum of the quantised words mod ``2^k``. ``culprits`` names the clients excluded for
    misbehaviour (a bad signature, shares that do not open, a bad share at unmasking, ...) with
    the reason; each of them is in ``dropped`` too.
    """

    weighted_sum: tuple[np.ndarray, ...]
    weight_sum: int
    clip_count: int
    survivors: tuple[int, ...]
    dropped: Mapping[int, Stage]
    ring_sum: np.ndarray
    culprits: Mapping[int, str] = field(default_factory=dict)

    def mean(self) -> tuple[np.ndarray, ...]:
        """Weighted FedAvg mean: weighted_sum / weight_sum."""
        if self.weight_sum <= 0:
            raise ValueOutOfRange("weight sum is 0; no examples were aggregated")
        return tuple(vec / self.weight_sum for vec in self.weighted_sum)


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
        self._accusers: dict[int, set[int]] = {}  # accused -> survivors that masked without it
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
        decoded = (
            decode_message(bytes(message))
            if isinstance(message, bytes | bytearray | memoryview)
            else message
        )
        stage = self._stage
        assert stage is not None
        expected_type = _REPLY_TYPES[stage]
        if not isinstance(decoded, _CLIENT_TYPES):
            raise StageError(f"got {type(decoded).__name__}, which clients never send")
        msg: ClientMessage = decoded
        if type(msg) is not expected_type:
            raise StageError(
                f"got {type(msg).__name__} while collecting {expected_type.__name__} "
                f"({stage.name}); out-of-order messages are rejected"
            )
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
        self._check_session(msg)
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

    def _check_session(self, msg: ClientMessage) -> None:
        if isinstance(msg, AdvertiseKeysReply):
            if msg.nonce != self._nonce:
                raise SessionMismatch(
                    f"client {msg.client_id} answered another round nonce; stale or replayed "
                    "from an earlier session"
                )
        elif msg.session_id != self._session_id:
            raise SessionMismatch(
                f"client {msg.client_id} sent a message of another session; stale or replayed"
            )

    def _accept(self, msg: ClientMessage) -> None:
        if isinstance(msg, AdvertiseKeysReply):
            self._accept_keys(msg)
        elif isinstance(msg, ShareKeysReply):
            self._accept_shares(msg)
        elif isinstance(msg, MaskedInputReply):
            self._accept_masked(msg)
        elif isinstance(msg, ConsistencyCheckReply):
            self._accept_consistency(msg)
        else:
            assert isinstance(msg, UnmaskReply)
            self._accept_unmask(msg)

    def _accept_keys(self, msg: AdvertiseKeysReply) -> None:
        validate_public_key(msg.c_public)
        validate_public_key(msg.s_public)
        if msg.c_public == msg.s_public:
            raise DuplicatePublicKey(
                f"client {msg.client_id} advertised the same key as c and s; it must generate "
                "two independent key pairs"
            )
        for other, (c_pk, s_pk) in self._keys.items():
            if {msg.c_public, msg.s_public} & {c_pk, s_pk}:
                raise DuplicatePublicKey(
                    f"client {msg.client_id} advertised a public key already advertised by "
                    f"client {other}; rejected (copied keys could impersonate a peer)"
                )
        if self._authority is not None:
            cert = DeviceCertificate.from_bytes(msg.certificate)
            verify_certificate(self._authority, cert, device_id=msg.client_id)
            statement = advertise_statement(
                self._config.digest, self._nonce, msg.client_id, msg.c_public, msg.s_public
            )
            device_key = VerifyingKey(cert.public_key)
            try:
                device_key.verify(statement, msg.signature)
            except BadSignature as exc:
                raise BadSignature(
                    f"client {msg.client_id}'s advertised keys are not signed by its device key"
                ) from exc
            self._signed[msg.client_id] = (msg.certificate, msg.signature)
            self._signers[msg.client_id] = device_key
        elif msg.certificate or msg.signature:
            raise CertificateError(
                f"client {msg.client_id} sent a certificate in a semi-honest session; the "
                "coordinator and the device run different variants (SecAggConfig.active)"
            )
        self._keys[msg.client_id] = (msg.c_public, msg.s_public)

    def _accept_shares(self, msg: ShareKeysReply) -> None:
        recipients = [item.peer for item in msg.shares]
        wanted = [cid for cid in self._holders if cid != msg.client_id]
        if sorted(recipients) != wanted or len(set(recipients)) != len(recipients):
            raise MalformedMessage(
                f"client {msg.client_id} must send exactly one share set to each other member of "
                "the advertised key list"
            )
        for item in msg.shares:
            if len(item.ciphertext) != SHARE_PLAINTEXT_SIZE + TAG_SIZE:
                raise MalformedMessage(
                    f"sealed share from {msg.client_id} to {item.peer} has "
                    f"{len(item.ciphertext)} bytes, expected {SHARE_PLAINTEXT_SIZE + TAG_SIZE}"
                )
        self._share_replies[msg.client_id] = msg

    def _accept_masked(self, msg: MaskedInputReply) -> None:
        quant = self._config.quantisation
        vec = msg.vector
        if vec.dtype.kind != "u" or vec.dtype.itemsize != quant.dtype.itemsize:
            raise DTypeError(
                f"client {msg.client_id} sent {vec.dtype} words; this session uses "
                f"{quant.dtype} (bit width {quant.bit_width})"
            )
        if vec.shape != (quant.word_count,):
            raise ShapeError(
                f"client {msg.client_id} sent {vec.shape} words, expected ({quant.word_count},); "
                "its update does not match config.vector_lengths"
            )
        if quant.bit_width < vec.dtype.itemsize * 8 and int(vec.max()) >> quant.bit_width:
            raise ValueOutOfRange(
                f"client {msg.client_id} sent a word >= 2^{quant.bit_width}; masked words must "
                "be reduced mod 2^bit_width"
            )
        peers = set(self._share_replies) - {msg.client_id}
        if list(msg.accused) != sorted(set(msg.accused)) or not set(msg.accused) <= peers:
            raise MalformedMessage(
                f"client {msg.client_id} accused {list(msg.accused)}; an accusation lists, "
                "sorted and once each, peers whose shares were relayed to it"
            )
        # Summed when the stage closes: an accused client's vector must stay out of the sum.
        self._masked[msg.client_id] = vec.astype(quant.dtype, copy=False)
        self._accusations[msg.client_id] = tuple(msg.accused)

    def _accept_consistency(self, msg: ConsistencyCheckReply) -> None:
        statement = consistency_statement(self._session_id, self._alive)
        try:
            self._signers[msg.client_id].verify(statement, msg.signature)
        except BadSignature as exc:
            raise BadSignature(
                f"client {msg.client_id}'s consistency signature does not verify on the "
                "survivor set"
            ) from exc
        self._consistency[msg.client_id] = msg.signature

    def _accept_unmask(self, msg: UnmaskReply) -> None:
        request = self._unmask_request
        assert request is not None
        cid = msg.client_id
        want_keys = tuple(
            owner for owner in request.dropped if cid not in self._accusers.get(owner, ())
        )
        if (
            tuple(owner for owner, _ in msg.seed_shares) != request.alive
            or tuple(owner for owner, _ in msg.key_shares) != want_keys
        ):
            raise MalformedMessage(
                f"client {cid} did not return exactly one share per listed client (none for a "
                "peer it accused), in the order of the unmasking request"
            )
        sid = self._session_id
        for kind, group in ((SHARE_OF_SEED, msg.seed_shares), (SHARE_OF_KEY, msg.key_shares)):
            for owner, share in group:
                if owner == cid:
                    continue  # its own share: checked by the secret's commitment / public key
                item = self._dealt(owner, cid)
                expected = item.seed_commitment if kind == SHARE_OF_SEED else item.key_commitment
                if share_commitment(sid, owner, cid, kind, share) != expected:
                    raise ShareVerificationError(
                        f"client {cid} revealed a share of client {owner}'s "
                        f"{'self-mask seed' if kind == SHARE_OF_SEED else 'masking key'} that "
                        "is not the one dealt to it (its commitment does not match); its reply "
                        "is discarded and the round goes on with the other responders"
                    )
        self._unmask_replies[cid] = msg

    def _dealt(self, owner: int, holder: int) -> EncryptedShare:
        for item in self._share_replies[owner].shares:
            if item.peer == holder:
                return item
        raise MalformedMessage(f"client {owner} dealt no share to {holder}")

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
                relayed = tuple(
                    EncryptedShare(
                        sender,
                        by_sender[sender][cid].nonce,
                        by_sender[sender][cid].ciphertext,
                        by_sender[sender][cid].key_commitment,
                        by_sender[sender][cid].seed_commitment,
                    )
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
        """Exclude who the survivors' accusations convict; returns the survivors left.

        An accuser of more than ``c`` peers accuses more clients than can be malicious under the
        config's assumption: it is the culprit and its accusations are void. Every other
        accusation excludes the accused (its vector stays out of the sum; its masking key is
        rebuilt to remove the masks the others shared with it).
        """
        c = self._config.c
        stage = Stage.MASKED_INPUT_COLLECTION
        liars = {cid for cid in survivors if len(self._accusations.get(cid, ())) > c}
        for cid in sorted(liars):
            self._exclude(
                cid,
                stage,
                f"accused {len(self._accusations[cid])} peers, more than the {c} colluders the "
                "config assumes; its accusations are void",
            )
        accusers: dict[int, set[int]] = {}
        for cid in survivors:
            for accused in self._accusations.get(cid, ()):
                accusers.setdefault(accused, set()).add(cid)
        for accused, by in sorted(accusers.items()):
            if by - liars:
                self._exclude(
                    accused,
                    stage,
                    f"its sealed shares did not open or verify for clients {sorted(by)}",
                )
        self._accusers = accusers
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
        index = {cid: i + 1 for i, cid in enumerate(self._holders)}
        # Every reply in hand passed the per-share commitment checks; any t of them rebuild the
        # secrets of an honest dealer. One Lagrange basis serves each group of t.
        acc = self._acc
        replies = {cid: self._unmask_replies[cid] for cid in responders}
        chosen = responders[: config.t]
        combiner = ShareCombiner([index[cid] for cid in chosen])
        for pos, owner in enumerate(request.alive):
            seed = combiner.combine({index[r]: replies[r].seed_shares[pos][1] for r in chosen})
            commitment = self._share_replies[owner].commitment
            if self_mask_commitment(self._session_id, owner, seed) != commitment:
                raise ShareVerificationError(
                    f"the self-mask seed of client {owner} rebuilt from verified shares does not "
                    f"match its commitment: client {owner} dealt shares that are not on one "
                    "polynomial; revoke its device certificate"
                )
            add_prg(acc, seed, config.bit_width, -1)
        for owner in request.dropped:
            survivors_s = {
                cid: self._keys[cid][1]
                for cid in request.alive
                if cid not in self._accusers.get(owner, ())
            }
            if not survivors_s:
                continue  # every survivor masked without it: there is no mask to remove
            holders = [r for r in responders if r not in self._accusers.get(owner, ())]
            if len(holders) < config.t:
                blame = (
                    f" (client {owner} sealed shares that did not open for "
                    f"{sorted(self._accusers[owner])}: it is the culprit)"
                    if owner in self._accusers
                    else ""
                )
                raise TooFewSurvivors(
                    f"only {len(holders)} responders hold a share of client {owner}'s masking "
                    f"key, threshold is {config.t}{blame}; the round aborted and revealed nothing"
                )
            picked = holders[: config.t]
            shares = {}
            for r in picked:
                shares[index[r]] = dict(replies[r].key_shares)[owner]
            basis = combiner if picked == chosen else ShareCombiner([index[r] for r in picked])
            rebuilt = X25519KeyPair(basis.combine(shares))
            if rebuilt.public != self._keys[owner][1]:
                raise ShareVerificationError(
                    f"the masking key of dropped client {owner} rebuilt from verified shares "
                    f"does not match its advertised public key: client {owner} dealt shares "
                    "that are not on one polynomial; revoke its device certificate"
                )
            unmask_dropped(acc, owner, rebuilt, survivors_s, self._session_id, config.bit_width)
        ring_sum = reduce_mod(acc, config.bit_width)
        try:
            decoded = dequantise(ring_sum, config.quantisation, len(request.alive))
        except ValueOutOfRange as exc:
            raise ValueOutOfRange(
                f"{exc} (the weight or clip-count word of the unmasked sum is out of range; "
                "secure aggregation hides which survivor sent it, so the round fails)"
            ) from exc
        parts = []
        start = 0
        for length in config.vector_lengths:
            parts.append(decoded.weighted_sum[start : start + length])
            start += length
        self._result = AggregateResult(
            weighted_sum=tuple(parts),
            weight_sum=decoded.weight_sum,
            clip_count=decoded.clip_count,
            survivors=tuple(request.alive),
            dropped=dict(self._dropped),
            ring_sum=ring_sum,
            culprits=dict(self._culprits),
        )
        self._stage = None
        self._share_replies = {}
        self._unmask_replies = {}
