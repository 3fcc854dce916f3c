"""The client half of secure aggregation (Bonawitz et al., CCS 2017, Fig. 4) as a state machine.

A :class:`ClientProtocol` lives as long as the device; each session starts when the coordinator's
:class:`AdvertiseKeysRequest` arrives, and then one method per stage consumes the server's message
and returns the client's reply::

    advertise_keys(AdvertiseKeysRequest)              -> AdvertiseKeysReply
    share_keys(ShareKeysRequest)                      -> ShareKeysReply
    masked_input(MaskedInputRequest, update, n_ex)    -> MaskedInputReply
    consistency_check(ConsistencyCheckRequest)        -> ConsistencyCheckReply   (active only)
    unmask(UnmaskRequest)                             -> UnmaskReply

In the actively secure variant (``config.active``, the default) the client holds an
:class:`~edge.secagg.identity.Identity`: it signs its advertised keys, checks every peer's
certificate against the authority IT pins (never one the server sends) and its signature, signs
the survivor set it is told in ConsistencyCheck, and reveals shares only for that same set and
only when at least ``t`` valid survivor signatures on it come back.

A sealed share that does not open, is not bound to (sender, recipient) or does not match the
sender's commitment does not abort the session: the client masks without that sender and
accuses it in its MaskedInputReply, so one bad peer cannot take honest clients down with it.

It knows nothing of the transport. Every check raises a specific :class:`SecAggError`; a failure
that concerns the current session (a forged share, an inconsistent unmasking request, a bad local
input, a late request) aborts that session and drops its secrets, so the client can never be
talked into revealing both shares of a peer. A request for another session
(:class:`SessionMismatch`), a replay of a stage already answered (:class:`ReplayError`) or a
request out of stage order (:class:`StageError`) is refused and leaves the current session
alone. A new round nonce (e.g. after a
coordinator restart) abandons the old session; its secrets are gone, so old unmasking requests
can never be answered.

Why one file of over 400 lines: the four stages and their checks are one state machine whose
invariants (never answer for both shares of a peer, drop secrets on any session fault) span
all of them; it is read top to bottom against Fig. 4 of the paper.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from . import aead
from .config import SecAggConfig
from .errors import (
    BadSignature,
    CertificateError,
    ConfigError,
    DecryptionError,
    DTypeError,
    DuplicatePublicKey,
    InconsistentUnmaskRequest,
    MalformedMessage,
    ReplayError,
    SessionMismatch,
    ShapeError,
    StageError,
    StageTimeout,
    TooFewSurvivors,
    UnknownClient,
)
from .identity import DeviceCertificate, Identity, VerifyingKey, verify_certificate
from .keys import X25519KeyPair, validate_public_key
from .masking import masked_input
from .messages import (
    AdvertiseKeysReply,
    AdvertiseKeysRequest,
    ClientMessage,
    ConsistencyCheckReply,
    ConsistencyCheckRequest,
    EncryptedShare,
    MaskedInputReply,
    MaskedInputRequest,
    Message,
    ShareKeysReply,
    ShareKeysRequest,
    UnmaskReply,
    UnmaskRequest,
    decode_message,
)
from .quantize import quantise
from .randomness import Clock, RandomSource, system_random
from .session import (
    SHARE_OF_KEY,
    SHARE_OF_SEED,
    advertise_statement,
    consistency_statement,
    self_mask_commitment,
    session_id,
    share_commitment,
)
from .shamir import SECRET_SIZE, split_secret
from .stages import Stage

__all__ = ["SHARE_KEY_INFO", "SHARE_PLAINTEXT_SIZE", "ClientProtocol"]

#: HKDF label of the AES-GCM key client ``sender`` uses to seal shares for ``recipient``.
SHARE_KEY_INFO = b"pifed-secagg/v1 share-key"
#: sender u32 | recipient u32 | share of s_u^SK (32) | share of b_u (32)
SHARE_PLAINTEXT_SIZE = 8 + 2 * SECRET_SIZE

_M = TypeVar("_M")


def share_key_info(sender: int, recipient: int) -> bytes:
    """HKDF info for the direction sender -> recipient (each direction gets its own key)."""
    return SHARE_KEY_INFO + struct.pack("<II", sender, recipient)


class _Session:
    """Secrets and views of one session; dropped wholesale on abort or completion."""

    def __init__(self, nonce: bytes, c_keys: X25519KeyPair, s_keys: X25519KeyPair) -> None:
        self.nonce = nonce
        self.c_keys = c_keys
        self.s_keys = s_keys
        self.session_id = b""
        self.u1: dict[int, tuple[bytes, bytes]] = {}
        self.self_seed = b""
        # owner id -> (share of owner's s^SK, share of owner's b) held by this client
        self.held: dict[int, tuple[bytes, bytes]] = {}
        self.u2: frozenset[int] = frozenset()
        # senders whose shares did not open or verify (this client masked without them)
        self.accused: frozenset[int] = frozenset()
        # device signing key of every member of U1 (actively secure variant)
        self.signers: dict[int, VerifyingKey] = {}
        # the survivor set this client signed in ConsistencyCheck
        self.signed_alive: tuple[int, ...] | None = None


class ClientProtocol:
    """One device's side of secure aggregation; see the module docstring for the stage flow."""

    def __init__(
        self,
        client_id: int,
        config: SecAggConfig,
        rng: RandomSource | None = None,
        clock: Clock | None = None,
        *,
        identity: Identity | None = None,
    ) -> None:
        if not isinstance(config, SecAggConfig):
            raise TypeError(f"config must be a SecAggConfig, got {type(config).__name__}")
        if isinstance(client_id, bool) or not isinstance(client_id, int):
            raise TypeError(f"client_id must be an int, got {type(client_id).__name__}")
        if client_id not in config.client_ids:
            raise ValueError(f"client_id {client_id} is not in the configured client_ids")
        if rng is not None and not callable(rng):
            raise TypeError("rng must be a callable rng(n) -> bytes, or None for the OS CSPRNG")
        if clock is not None and not callable(clock):
            raise TypeError("clock must be a callable returning seconds, or None")
        if identity is not None and not isinstance(identity, Identity):
            raise TypeError(f"identity must be an Identity, got {type(identity).__name__}")
        if config.active:
            if identity is None:
                raise ConfigError(
                    "the actively secure protocol (SecAggConfig.active) needs this device's "
                    "Identity (signing key, certificate, pinned authority): enroll the device "
                    "(`pifed enroll`) and pass identity=, or use active=False for the "
                    "semi-honest variant"
                )
            if identity.certificate.device_id != client_id:
                raise CertificateError(
                    f"the device certificate is for device {identity.certificate.device_id}, "
                    f"but this client takes part as {client_id}; the secure-aggregation id must "
                    "be the enrolled device's id"
                )
        self._identity = identity if config.active else None
        self._id = client_id
        self._config = config
        self._rng: RandomSource = rng if rng is not None else system_random
        self._clock: Clock = clock if clock is not None else time.monotonic
        self._session: _Session | None = None
        self._stage: Stage | None = None
        self._waiting_since = 0.0
        self._seen_nonces: set[bytes] = set()
        self._last_clip_count: int | None = None
        # (certificate bytes, device id) -> device signing key, for certificates of the pinned
        # authority already verified (a peer's certificate is the same every round; its
        # signatures are not)
        self._verified_certs: dict[tuple[bytes, int], VerifyingKey] = {}
        self._finished_session = b""

    @property
    def client_id(self) -> int:
        """This client's id."""
        return self._id

    @property
    def stage(self) -> Stage | None:
        """The last stage this client answered in the current session (None: no session)."""
        return self._stage

    @property
    def session_id(self) -> bytes | None:
        """The current session id once known (after share_keys), else None."""
        if self._session is None or not self._session.session_id:
            return None
        return self._session.session_id

    @property
    def last_clip_count(self) -> int | None:
        """Coordinates of the last submitted update that were clipped (local report only)."""
        return self._last_clip_count

    def abort(self) -> None:
        """Forget the current session and its secrets (e.g. the coordinator announced a restart)."""
        self._session = None
        self._stage = None

    # -- stages -------------------------------------------------------------------------------

    def respond(
        self,
        request: Message | bytes,
        update: Sequence[np.ndarray] | None = None,
        num_examples: int = 0,
    ) -> ClientMessage:
        """Answer whichever stage ``request`` opens: the one entry point a transport needs.

        ``update`` and ``num_examples`` are used by the masked-input stage only; a masked-input
        request without an update raises (StageError) rather than mask nothing.
        """
        req = decode_message(request) if isinstance(request, bytes) else request
        if isinstance(req, AdvertiseKeysRequest):
            return self.advertise_keys(req)
        if isinstance(req, ShareKeysRequest):
            return self.share_keys(req)
        if isinstance(req, MaskedInputRequest):
            if update is None:
                raise StageError("a masked-input request needs the update to mask")
            return self.masked_input(req, update, num_examples)
        if isinstance(req, ConsistencyCheckRequest):
            return self.consistency_check(req)
        if isinstance(req, UnmaskRequest):
            return self.unmask(req)
        raise StageError(f"{type(req).__name__} is not a request a client answers")

    def advertise_keys(self, request: AdvertiseKeysRequest | bytes) -> AdvertiseKeysReply:
        """Start a session: draw fresh c and s key pairs and advertise their public keys."""
        req = self._coerce(request, AdvertiseKeysRequest)
        if req.config_digest != self._config.digest:
            raise SessionMismatch(
                "the coordinator runs a different SecAggConfig (ids, threshold or quantisation); "
                "deploy the same configuration to coordinator and clients"
            )
        if req.nonce in self._seen_nonces:
            raise ReplayError(
                "this round nonce was already used; a replayed or restarted-with-same-seed "
                "coordinator must draw a fresh nonce"
            )
        self._seen_nonces.add(req.nonce)
        self.abort()  # a new nonce supersedes whatever session was running
        c_keys = X25519KeyPair.generate(self._rng)
        s_keys = X25519KeyPair.generate(self._rng)
        self._session = _Session(req.nonce, c_keys, s_keys)
        self._enter(Stage.ADVERTISE_KEYS)
        if self._identity is None:
            return AdvertiseKeysReply(self._id, req.nonce, c_keys.public, s_keys.public)
        statement = advertise_statement(
            self._config.digest, req.nonce, self._id, c_keys.public, s_keys.public
        )
        return AdvertiseKeysReply(
            self._id,
            req.nonce,
            c_keys.public,
            s_keys.public,
            self._identity.certificate.to_bytes(),
            self._identity.key.sign(statement),
        )

    def share_keys(self, request: ShareKeysRequest | bytes) -> ShareKeysReply:
        """Check the advertised key list, fix the session id, and seal Shamir shares to peers."""
        req = self._coerce(request, ShareKeysRequest)
        session = self._expect(Stage.ADVERTISE_KEYS, Stage.SHARE_KEYS, nonce=req.nonce)
        try:
            return self._share_keys(session, req)
        except BaseException:
            self.abort()
            raise

    def masked_input(
        self,
        request: MaskedInputRequest | bytes,
        update: Sequence[np.ndarray],
        num_examples: int,
    ) -> MaskedInputReply:
        """Decrypt peers' shares, then quantise and double-mask the update.

        ``update`` is one 1-D float array per entry of ``config.vector_lengths``; a wrong count,
        length or dtype (ShapeError / DTypeError), a non-finite value or a bad ``num_examples``
        (ValueOutOfRange / DTypeError) raises at once, before any share is opened, and ends this
        client's session: the transport reports the error so the server drops it now.
        """
        req = self._coerce(request, MaskedInputRequest)
        session = self._expect(
            Stage.SHARE_KEYS, Stage.MASKED_INPUT_COLLECTION, session_id=req.session_id
        )
        try:
            return self._masked_input(session, req, update, num_examples)
        except BaseException:
            self.abort()
            raise

    def unmask(self, request: UnmaskRequest | bytes) -> UnmaskReply:
        """Reveal b-shares of survivors and sk-shares of dropped clients, after strict checks.

        Refuses (InconsistentUnmaskRequest) if a peer is listed both alive and dropped, an id
        repeats, this client is listed dropped, or an id is not a member of the session.
        """
        req = self._coerce(request, UnmaskRequest)
        answered = Stage.CONSISTENCY_CHECK if self._config.active else Stage.MASKED_INPUT_COLLECTION
        session = self._expect(answered, Stage.UNMASKING, session_id=req.session_id)
        try:
            reply = self._unmask(session, req)
        except BaseException:
            self.abort()
            raise
        # Answer once: the secrets of this session are no longer needed and must not be reused.
        self._finished_session = session.session_id
        self._session = None
        self._stage = Stage.UNMASKING
        return reply

    def consistency_check(self, request: ConsistencyCheckRequest | bytes) -> ConsistencyCheckReply:
        """Sign the survivor set U3 the server announces (actively secure variant only).

        The set must hold this client, at least ``t`` clients and only clients whose shares
        this client holds; a client signs one set per session.
        """
        req = self._coerce(request, ConsistencyCheckRequest)
        if self._identity is None:
            raise StageError(
                "ConsistencyCheck is part of the actively secure protocol; this client runs the "
                "semi-honest variant (SecAggConfig.active=False)"
            )
        session = self._expect(
            Stage.MASKED_INPUT_COLLECTION, Stage.CONSISTENCY_CHECK, session_id=req.session_id
        )
        try:
            alive = self._check_alive(session, req.alive)
        except BaseException:
            self.abort()
            raise
        session.signed_alive = alive
        signature = self._identity.key.sign(consistency_statement(session.session_id, alive))
        self._enter(Stage.CONSISTENCY_CHECK)
        return ConsistencyCheckReply(self._id, session.session_id, signature)

    # -- internals ----------------------------------------------------------------------------

    def _coerce(self, request: object, kind: type[_M]) -> _M:
        if isinstance(request, bytes | bytearray | memoryview):
            request = decode_message(bytes(request))
        if not isinstance(request, kind):
            raise StageError(
                f"expected {kind.__name__}, got {type(request).__name__}; messages must follow "
                "the stage order AdvertiseKeys, ShareKeys, MaskedInputCollection, "
                "(ConsistencyCheck), Unmasking"
            )
        return request

    def _enter(self, stage: Stage) -> None:
        self._stage = stage
        self._waiting_since = self._clock()

    def _expect(
        self,
        answered: Stage,
        stage: Stage,
        *,
        nonce: bytes | None = None,
        session_id: bytes | None = None,
    ) -> _Session:
        session = self._session
        if session is None and session_id is not None and session_id == self._finished_session:
            raise ReplayError(
                "this client already answered this session's unmasking request; a second "
                "answer could reveal both shares of a peer"
            )
        if session is None:
            raise SessionMismatch(
                f"no session is open (got a {stage.name} request); the coordinator must start "
                "a fresh session with AdvertiseKeysRequest"
            )
        if nonce is not None and nonce != session.nonce:
            raise SessionMismatch("request carries another round nonce; it is from another session")
        if session_id is not None and session_id != session.session_id:
            raise SessionMismatch("request carries another session id; it is from another session")
        if self._stage != answered:
            if self._stage is not None and self._stage >= stage:
                raise ReplayError(f"this client already answered {stage.name} in this session")
            raise StageError(
                f"got a {stage.name} request but this client is at "
                f"{self._stage.name if self._stage is not None else 'no stage'}; messages follow "
                "AdvertiseKeys, ShareKeys, MaskedInputCollection, (ConsistencyCheck), Unmasking"
            )
        timeouts = self._config.timeouts
        limit = timeouts.for_stage(answered) + timeouts.for_stage(stage)
        waited = self._clock() - self._waiting_since
        if waited > limit:
            self.abort()
            raise StageTimeout(
                f"{stage.name} request arrived {waited:.1f} s after this client's "
                f"{answered.name} reply (limit {limit:.1f} s); the session was abandoned, the "
                "coordinator must start a fresh one"
            )
        return session

    def _share_keys(self, session: _Session, req: ShareKeysRequest) -> ShareKeysReply:
        config = self._config
        if req.config_digest != config.digest:
            raise SessionMismatch("ShareKeysRequest names a different SecAggConfig")
        ids = [cid for cid, _, _ in req.keys]
        if ids != sorted(set(ids)):
            raise MalformedMessage("advertised key list must be sorted by id without repeats")
        for cid in ids:
            if cid not in config.client_ids:
                raise UnknownClient(f"advertised key list names unknown client {cid}")
        keys = {cid: (c_pk, s_pk) for cid, c_pk, s_pk in req.keys}
        if keys.get(self._id) != (session.c_keys.public, session.s_keys.public):
            raise SessionMismatch(
                "the advertised key list does not carry this client's keys as sent; the list "
                "belongs to another session or was altered"
            )
        if self._identity is not None:
            session.signers = self._check_signed_keys(session, req)
        seen: set[bytes] = set()
        for cid, (c_pk, s_pk) in keys.items():
            for pk in (c_pk, s_pk):
                validate_public_key(pk)
                if pk in seen:
                    raise DuplicatePublicKey(
                        f"public key {pk.hex()[:16]}... is advertised twice (client {cid}); "
                        "every client must generate its own fresh key pairs"
                    )
                seen.add(pk)
        if len(keys) < config.t:
            raise TooFewSurvivors(
                f"only {len(keys)} clients advertised keys, threshold is {config.t}; the round "
                "cannot complete"
            )
        sid = session_id(config.digest, session.nonce, req.keys)
        session.session_id = sid
        session.u1 = keys
        holders = sorted(keys)
        session.self_seed = self._rng(SECRET_SIZE)
        key_shares = split_secret(session.s_keys.secret, config.t, len(holders), self._rng)
        seed_shares = split_secret(session.self_seed, config.t, len(holders), self._rng)
        sealed = []
        for index, peer in enumerate(holders):
            if peer == self._id:
                session.held[self._id] = (key_shares[index], seed_shares[index])
                continue
            key = session.c_keys.agree(keys[peer][0], salt=sid, info=share_key_info(self._id, peer))
            nonce = self._rng(aead.NONCE_SIZE)
            plaintext = struct.pack("<II", self._id, peer) + key_shares[index] + seed_shares[index]
            aad = aead.associated_data(sid, Stage.SHARE_KEYS, self._id, peer)
            sealed.append(
                EncryptedShare(
                    peer,
                    nonce,
                    aead.seal(key, nonce, plaintext, aad),
                    share_commitment(sid, self._id, peer, SHARE_OF_KEY, key_shares[index]),
                    share_commitment(sid, self._id, peer, SHARE_OF_SEED, seed_shares[index]),
                )
            )
        commitment = self_mask_commitment(sid, self._id, session.self_seed)
        self._enter(Stage.SHARE_KEYS)
        return ShareKeysReply(self._id, sid, commitment, tuple(sealed))

    def _masked_input(
        self,
        session: _Session,
        req: MaskedInputRequest,
        update: Sequence[np.ndarray],
        num_examples: int,
    ) -> MaskedInputReply:
        config = self._config
        if req.recipient != self._id:
            raise SessionMismatch(
                f"MaskedInputRequest is addressed to client {req.recipient}, not {self._id}"
            )
        senders = [item.peer for item in req.shares]
        if len(set(senders)) != len(senders):
            raise MalformedMessage("MaskedInputRequest carries two share sets from the same sender")
        for sender in senders:
            if sender == self._id or sender not in session.u1:
                raise UnknownClient(
                    f"MaskedInputRequest carries shares from {sender}, which is not a peer in "
                    "this session's advertised key list"
                )
        if len(senders) + 1 < config.t:
            raise TooFewSurvivors(
                f"only {len(senders) + 1} clients shared keys, threshold is {config.t}"
            )
        # The client's own input first: a bad one raises before anything else happens.
        flat = self._flatten(update)
        quantised = quantise(flat, num_examples, config.quantisation, self._rng)
        held = {self._id: session.held[self._id]}
        accused = []
        for item in req.shares:
            try:
                held[item.peer] = self._open_share(session, item)
            except DecryptionError:
                accused.append(item.peer)
        if len(held) < config.t:
            raise TooFewSurvivors(
                f"only {len(held)} clients' shares opened here (accused: {accused}), threshold "
                f"is {config.t}; the round cannot complete"
            )
        session.held = held
        session.u2 = frozenset(held)
        session.accused = frozenset(accused)
        peers = {peer: session.u1[peer][1] for peer in session.u2 if peer != self._id}
        vector = masked_input(
            quantised.words,
            self._id,
            session.s_keys,
            session.self_seed,
            peers,
            session.session_id,
            config.bit_width,
        )
        self._last_clip_count = quantised.clip_count
        self._enter(Stage.MASKED_INPUT_COLLECTION)
        return MaskedInputReply(self._id, session.session_id, vector, tuple(sorted(accused)))

    def _open_share(self, session: _Session, item: EncryptedShare) -> tuple[bytes, bytes]:
        """(share of the sender's s^SK, share of its b); DecryptionError names the sender."""
        sid = session.session_id
        key = session.c_keys.agree(
            session.u1[item.peer][0], salt=sid, info=share_key_info(item.peer, self._id)
        )
        aad = aead.associated_data(sid, Stage.SHARE_KEYS, item.peer, self._id)
        try:
            plaintext = aead.open_sealed(key, item.nonce, item.ciphertext, aad)
        except DecryptionError as exc:
            raise DecryptionError(
                f"the sealed shares of client {item.peer} do not open: {exc}"
            ) from exc
        if len(plaintext) != SHARE_PLAINTEXT_SIZE or plaintext[:8] != struct.pack(
            "<II", item.peer, self._id
        ):
            raise DecryptionError(
                f"share plaintext from {item.peer} is not bound to ({item.peer}, {self._id})"
            )
        key_share, seed_share = plaintext[8 : 8 + SECRET_SIZE], plaintext[8 + SECRET_SIZE :]
        if (
            share_commitment(sid, item.peer, self._id, SHARE_OF_KEY, key_share)
            != item.key_commitment
            or share_commitment(sid, item.peer, self._id, SHARE_OF_SEED, seed_share)
            != item.seed_commitment
        ):
            raise DecryptionError(
                f"the shares client {item.peer} sealed do not match the commitments it sent"
            )
        return key_share, seed_share

    def _check_signed_keys(
        self, session: _Session, req: ShareKeysRequest
    ) -> dict[int, VerifyingKey]:
        """Every advertised key pair carries a certificate of the pinned authority for its id and
        that device's signature over it; returns id -> device signing key."""
        identity = self._identity
        assert identity is not None
        if len(req.signed) != len(req.keys):
            raise BadSignature(
                f"the advertised key list carries {len(req.signed)} signatures for "
                f"{len(req.keys)} clients; the actively secure protocol signs every entry, the "
                "coordinator dropped or invented one"
            )
        signers: dict[int, VerifyingKey] = {}
        for (cid, c_pk, s_pk), (cert_bytes, signature) in zip(req.keys, req.signed, strict=True):
            device_key = self._certified_key(cert_bytes, cid)
            statement = advertise_statement(self._config.digest, session.nonce, cid, c_pk, s_pk)
            try:
                device_key.verify(statement, signature)
            except BadSignature as exc:
                raise BadSignature(
                    f"the advertised keys of client {cid} are not signed by its device key; the "
                    "coordinator forged or altered them"
                ) from exc
            signers[cid] = device_key
        return signers

    def _certified_key(self, cert_bytes: bytes, cid: int) -> VerifyingKey:
        """The device key ``cert_bytes`` certifies for ``cid`` under the pinned authority."""
        known = self._verified_certs.get((cert_bytes, cid))
        if known is None:
            assert self._identity is not None
            cert = DeviceCertificate.from_bytes(cert_bytes)
            verify_certificate(self._identity.authority, cert, device_id=cid)
            self._verified_certs[(cert_bytes, cid)] = known = VerifyingKey(cert.public_key)
        return known

    def _check_alive(self, session: _Session, alive: Sequence[int]) -> tuple[int, ...]:
        """The announced survivor set, checked against this client's own view."""
        if list(alive) != sorted(set(alive)):
            raise InconsistentUnmaskRequest("the survivor set must be sorted without repeats")
        if self._id not in alive:
            raise InconsistentUnmaskRequest(
                "the survivor set does not list this client although it submitted; refusing"
            )
        strangers = set(alive) - session.u2
        if strangers:
            raise InconsistentUnmaskRequest(
                f"the survivor set names {sorted(strangers)}, whose shares this client does not "
                "hold (they never shared keys with it, or it accused them); refusing"
            )
        if len(alive) < self._config.t:
            raise TooFewSurvivors(
                f"only {len(alive)} survivors, threshold is {self._config.t}; refusing to unmask"
            )
        return tuple(alive)

    def _check_consistency(self, session: _Session, req: UnmaskRequest) -> None:
        """At least t valid signatures of survivors on the very set this client signed."""
        if session.signed_alive is None or tuple(req.alive) != session.signed_alive:
            raise InconsistentUnmaskRequest(
                "the unmasking request names another survivor set than the one this client "
                "signed in ConsistencyCheck; refusing (the coordinator tells clients different "
                "stories)"
            )
        statement = consistency_statement(session.session_id, req.alive)
        signers = [cid for cid, _ in req.signatures]
        if len(set(signers)) != len(signers):
            raise InconsistentUnmaskRequest("the unmasking request repeats a signer; refusing")
        strangers = set(signers) - set(req.alive)
        if strangers:
            raise InconsistentUnmaskRequest(
                f"the unmasking request carries consistency signatures of {sorted(strangers)}, "
                "which are not survivors; refusing"
            )
        # t valid signatures are what the protocol needs; the ones after the t-th are not read
        # (each costs a verification, ~0.3 ms on a Pi-class core).
        for cid, signature in req.signatures[: self._config.t]:
            try:
                session.signers[cid].verify(statement, signature)
            except BadSignature as exc:
                raise BadSignature(
                    f"the consistency signature of client {cid} does not verify on this "
                    "session's survivor set (another set, another session, or forged); refusing"
                ) from exc
        if len(signers) < self._config.t:
            raise InconsistentUnmaskRequest(
                f"only {len(signers)} survivors signed the survivor set, threshold is "
                f"{self._config.t}; refusing to unmask"
            )

    def _flatten(self, update: Sequence[np.ndarray]) -> np.ndarray:
        lengths = self._config.vector_lengths
        if isinstance(update, np.ndarray) or not isinstance(update, Sequence):
            raise ShapeError(
                f"update must be a sequence of {len(lengths)} 1-D float arrays (one per entry "
                "of config.vector_lengths); wrap a single vector in a list"
            )
        if len(update) != len(lengths):
            raise ShapeError(f"expected {len(lengths)} vectors, got {len(update)}")
        for i, (vec, length) in enumerate(zip(update, lengths, strict=True)):
            if not isinstance(vec, np.ndarray):
                raise DTypeError(f"vector {i} must be a numpy array, got {type(vec).__name__}")
            if vec.dtype.kind != "f":
                raise DTypeError(f"vector {i} has dtype {vec.dtype}; pass float32 or float64")
            if vec.ndim != 1 or vec.shape[0] != length:
                raise ShapeError(
                    f"vector {i} has shape {vec.shape}, expected ({length},); flatten it or fix "
                    "config.vector_lengths"
                )
        return np.concatenate([vec.astype(np.float64, copy=False) for vec in update])

    def _unmask(self, session: _Session, req: UnmaskRequest) -> UnmaskReply:
        alive, dropped = req.alive, req.dropped
        if len(set(alive)) != len(alive) or len(set(dropped)) != len(dropped):
            raise InconsistentUnmaskRequest(
                "unmasking request lists a client twice; refusing (it could reveal both shares)"
            )
        both = set(alive) & set(dropped)
        if both:
            raise InconsistentUnmaskRequest(
                f"unmasking request lists {sorted(both)} as both alive and dropped; refusing, "
                "answering would hand the server that client's update"
            )
        if self._id in dropped:
            raise InconsistentUnmaskRequest(
                "unmasking request lists this client as dropped although it submitted; refusing"
            )
        known = session.u2 | session.accused
        unknown = (set(alive) | set(dropped)) - known
        if unknown:
            raise InconsistentUnmaskRequest(
                f"unmasking request names {sorted(unknown)}, which did not share keys with this "
                "client in this session; refusing"
            )
        if set(alive) | set(dropped) != known or self._id not in alive:
            raise InconsistentUnmaskRequest(
                "unmasking request does not partition this session's key-sharing clients into "
                "alive and dropped; refusing"
            )
        self._check_alive(session, alive)
        if self._identity is not None:
            self._check_consistency(session, req)
        seed_shares = tuple((owner, session.held[owner][1]) for owner in sorted(alive))
        # an accused sender's shares never opened here: there is nothing to reveal for it
        key_shares = tuple(
            (owner, session.held[owner][0]) for owner in sorted(dropped) if owner in session.held
        )
        return UnmaskReply(self._id, session.session_id, seed_shares, key_shares)
