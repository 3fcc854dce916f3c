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

This module decides what spans the stages -- their order, when a session is dropped, what is
sent -- and calls pure helpers beside it for the rest: ``stage_order.py`` (may this request be
answered now), ``advertised_keys.py`` (the ShareKeys key list, peers' certificates and
signatures), ``share_sealing.py`` (sealing shares to peers, opening and accusing),
``local_update.py`` (the update's shapes), ``survivor_checks.py`` (survivor sets, consistency
signatures); ``session_state.py`` holds one session's secrets.

It knows nothing of the transport. Every check raises a specific :class:`SecAggError`; a failure
that concerns the current session (a forged share, an inconsistent unmasking request, a bad local
input, a late request) aborts that session and drops its secrets, so the client can never be
talked into revealing both shares of a peer. A request for another session
(:class:`SessionMismatch`), a replay of a stage already answered (:class:`ReplayError`) or a
request out of stage order (:class:`StageError`) is refused and leaves the current session
alone. A new round nonce (e.g. after a coordinator restart) abandons the old session; its
secrets are gone, so old unmasking requests can never be answered.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from .advertised_keys import CertificateCache, check_advertised_keys
from .config import SecAggConfig
from .errors import (
    CertificateError,
    ConfigError,
    ReplayError,
    SessionMismatch,
    StageError,
    StageTimeout,
    TooFewSurvivors,
)
from .identity import Identity
from .keys import X25519KeyPair
from .local_update import flatten_update
from .masking import masked_input
from .messages import (
    AdvertiseKeysReply,
    AdvertiseKeysRequest,
    ClientMessage,
    ConsistencyCheckReply,
    ConsistencyCheckRequest,
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
from .session import advertise_statement, consistency_statement, self_mask_commitment, session_id
from .session_state import SessionState
from .shamir import SECRET_SIZE, split_secret
from .share_sealing import check_share_senders, open_shares, seal_shares
from .stage_order import check_deadline, check_session, check_stage, coerce_request
from .stages import Stage
from .survivor_checks import check_alive, check_consistency, check_partition

__all__ = ["ClientProtocol"]


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
        self._session: SessionState | None = None
        self._stage: Stage | None = None
        self._waiting_since = 0.0
        self._seen_nonces: set[bytes] = set()
        self._last_clip_count: int | None = None
        # peers' certificates already verified under the pinned authority (actively secure)
        self._certificates = (
            CertificateCache(self._identity.authority) if self._identity is not None else None
        )
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
        req = coerce_request(request, AdvertiseKeysRequest)
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
        self._session = SessionState(req.nonce, c_keys, s_keys)
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
        req = coerce_request(request, ShareKeysRequest)
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
        req = coerce_request(request, MaskedInputRequest)
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
        req = coerce_request(request, UnmaskRequest)
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
        req = coerce_request(request, ConsistencyCheckRequest)
        if self._identity is None:
            raise StageError(
                "ConsistencyCheck is part of the actively secure protocol; this client runs the "
                "semi-honest variant (SecAggConfig.active=False)"
            )
        session = self._expect(
            Stage.MASKED_INPUT_COLLECTION, Stage.CONSISTENCY_CHECK, session_id=req.session_id
        )
        try:
            alive = check_alive(self._id, self._config.t, session.u2, req.alive)
        except BaseException:
            self.abort()
            raise
        session.signed_alive = alive
        signature = self._identity.key.sign(consistency_statement(session.session_id, alive))
        self._enter(Stage.CONSISTENCY_CHECK)
        return ConsistencyCheckReply(self._id, session.session_id, signature)

    # -- internals ----------------------------------------------------------------------------

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
    ) -> SessionState:
        session = check_session(
            self._session, self._finished_session, stage, nonce=nonce, session_id=session_id
        )
        check_stage(self._stage, answered, stage)
        waited = self._clock() - self._waiting_since
        try:
            check_deadline(self._config.timeouts, answered, stage, waited)
        except StageTimeout:
            self.abort()
            raise
        return session

    def _share_keys(self, session: SessionState, req: ShareKeysRequest) -> ShareKeysReply:
        config = self._config
        own_keys = (session.c_keys.public, session.s_keys.public)
        keys, session.signers = check_advertised_keys(
            self._id, config, session.nonce, own_keys, req, self._certificates
        )
        sid = session_id(config.digest, session.nonce, req.keys)
        session.session_id = sid
        session.u1 = keys
        holders = sorted(keys)
        session.self_seed = self._rng(SECRET_SIZE)
        key_shares = split_secret(session.s_keys.secret, config.t, len(holders), self._rng)
        seed_shares = split_secret(session.self_seed, config.t, len(holders), self._rng)
        own = holders.index(self._id)
        session.held[self._id] = (key_shares[own], seed_shares[own])
        c_public = {peer: pair[0] for peer, pair in keys.items()}
        sealed = seal_shares(
            self._id, session.c_keys, sid, holders, c_public, key_shares, seed_shares, self._rng
        )
        commitment = self_mask_commitment(sid, self._id, session.self_seed)
        self._enter(Stage.SHARE_KEYS)
        return ShareKeysReply(self._id, sid, commitment, sealed)

    def _masked_input(
        self,
        session: SessionState,
        req: MaskedInputRequest,
        update: Sequence[np.ndarray],
        num_examples: int,
    ) -> MaskedInputReply:
        config = self._config
        check_share_senders(self._id, session.u1.keys(), config.t, req)
        # The client's own input first: a bad one raises before anything else happens.
        flat = flatten_update(update, config.vector_lengths)
        quantised = quantise(flat, num_examples, config.quantisation, self._rng)
        c_public = {peer: pair[0] for peer, pair in session.u1.items()}
        opened, accused = open_shares(
            self._id, session.c_keys, session.session_id, c_public, req.shares
        )
        held = {self._id: session.held[self._id], **opened}
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

    def _unmask(self, session: SessionState, req: UnmaskRequest) -> UnmaskReply:
        alive, dropped = req.alive, req.dropped
        t = self._config.t
        check_partition(self._id, t, session.u2, session.accused, alive, dropped)
        if self._identity is not None:
            check_consistency(t, session.session_id, session.signed_alive, session.signers, req)
        seed_shares = tuple((owner, session.held[owner][1]) for owner in sorted(alive))
        # an accused sender's shares never opened here: there is nothing to reveal for it
        key_shares = tuple(
            (owner, session.held[owner][0]) for owner in sorted(dropped) if owner in session.held
        )
        return UnmaskReply(self._id, session.session_id, seed_shares, key_shares)
