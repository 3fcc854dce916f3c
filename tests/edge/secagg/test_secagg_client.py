"""The client state machine against a hand-driven honest relay (no server package needed).

Covers the client's side of cases 2 (unmasking refusals), 3 (bad local input), 4 (replay and
other sessions), 5 (tampered shares and keys), 8 (restart) and 9 (timeouts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from edge.secagg import (
    AdvertiseKeysRequest,
    ClientProtocol,
    DecryptionError,
    DeterministicRandom,
    DTypeError,
    DuplicatePublicKey,
    EncryptedShare,
    InconsistentUnmaskRequest,
    InvalidPublicKey,
    ManualClock,
    MaskedInputRequest,
    ReplayError,
    SecAggConfig,
    SessionMismatch,
    ShapeError,
    ShareKeysReply,
    ShareKeysRequest,
    Stage,
    StageError,
    StageTimeout,
    TooFewSurvivors,
    UnknownClient,
    UnmaskRequest,
    ValueOutOfRange,
)
from edge.secagg.share_sealing import open_share

N = 5
M = 6


@dataclass
class Relay:
    """Plays an honest server by hand: builds each stage's requests from the clients' replies."""

    config: SecAggConfig
    clock: ManualClock
    clients: dict[int, ClientProtocol]
    nonce: bytes = b"N" * 32
    key_request: ShareKeysRequest | None = None
    share_replies: dict[int, ShareKeysReply] = field(default_factory=dict)

    @classmethod
    def build(cls, n: int = N, seed: bytes = b"client") -> Relay:
        # The semi-honest variant: these are the checks both variants share, driven by hand;
        # the actively secure ones (signatures, ConsistencyCheck) are in test_secagg_active.py.
        config = SecAggConfig(
            client_ids=tuple(range(1, n + 1)), vector_lengths=(2, M - 2), active=False
        )
        clock = ManualClock()
        clients = {
            cid: ClientProtocol(cid, config, DeterministicRandom(seed + bytes([cid])), clock)
            for cid in config.client_ids
        }
        return cls(config, clock, clients)

    def advertise(self) -> ShareKeysRequest:
        request = AdvertiseKeysRequest(self.nonce, self.config.digest)
        replies = [c.advertise_keys(request) for c in self.clients.values()]
        keys = tuple(sorted((r.client_id, r.c_public, r.s_public) for r in replies))
        self.key_request = ShareKeysRequest(self.nonce, self.config.digest, keys)
        return self.key_request

    def share(self) -> None:
        request = self.advertise()
        self.share_replies = {cid: c.share_keys(request) for cid, c in self.clients.items()}

    @property
    def session(self) -> bytes:
        return next(iter(self.share_replies.values())).session_id

    def masked_request(self, cid: int) -> MaskedInputRequest:
        relayed = tuple(
            EncryptedShare(
                sender, item.nonce, item.ciphertext, item.key_commitment, item.seed_commitment
            )
            for sender, reply in sorted(self.share_replies.items())
            if sender != cid
            for item in reply.shares
            if item.peer == cid
        )
        return MaskedInputRequest(cid, self.session, relayed)

    def submit_all(self) -> None:
        self.share()
        for cid, client in self.clients.items():
            client.masked_input(self.masked_request(cid), _update(cid), 3)


def _update(cid: int) -> list[np.ndarray]:
    vec = np.linspace(-0.5, 0.5, M) * cid
    return [vec[:2].astype(np.float32), vec[2:]]


# -- constructor -----------------------------------------------------------------------------


def test_constructor_validates_every_argument() -> None:
    config = SecAggConfig(client_ids=(1, 2, 3), vector_lengths=(2,))
    with pytest.raises(TypeError):
        ClientProtocol(1, "config")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ClientProtocol("1", config)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ClientProtocol(4, config)
    with pytest.raises(TypeError):
        ClientProtocol(1, config, rng=b"seed")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ClientProtocol(1, config, clock=0.0)  # type: ignore[arg-type]


# -- case 2: unmasking refusals ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("alive", "dropped"),
    [
        ((1, 2, 3, 4), (4, 5)),  # 4 both alive and dropped
        ((1, 2, 2, 3, 4), (5,)),  # a peer id repeats
        ((1, 2, 3, 4, 5), (5, 5)),  # a dropped id repeats
        ((2, 3, 4, 5), (1,)),  # the client itself listed as dropped
        ((1, 2, 3, 4), (5, 9)),  # unknown id
        ((1, 2, 3, 4), ()),  # a member of the session silently missing
    ],
    ids=["alive-and-dropped", "repeat-alive", "repeat-dropped", "self-dropped", "unknown", "gap"],
)
def test_client_refuses_an_inconsistent_unmask_request(
    alive: tuple[int, ...], dropped: tuple[int, ...]
) -> None:
    relay = Relay.build()
    relay.submit_all()
    client = relay.clients[1]
    with pytest.raises(InconsistentUnmaskRequest):
        client.unmask(UnmaskRequest(relay.session, alive, dropped))
    # Refusing ends the session: not even a well-formed request is answered afterwards.
    with pytest.raises(SessionMismatch):
        client.unmask(UnmaskRequest(relay.session, (1, 2, 3, 4, 5), ()))


def test_client_answers_a_consistent_unmask_request_exactly_once() -> None:
    relay = Relay.build()
    relay.submit_all()
    request = UnmaskRequest(relay.session, (1, 2, 4, 5), (3,))
    reply = relay.clients[1].unmask(request)
    assert [owner for owner, _ in reply.seed_shares] == [1, 2, 4, 5]
    assert [owner for owner, _ in reply.key_shares] == [3]
    with pytest.raises(ReplayError):
        relay.clients[1].unmask(request)
    with pytest.raises(ReplayError):  # asking again with other lists is the two-shares attack
        relay.clients[1].unmask(UnmaskRequest(relay.session, (1, 2, 3, 4), (5,)))


def test_client_refuses_to_unmask_with_fewer_than_t_survivors() -> None:
    relay = Relay.build()
    relay.submit_all()
    with pytest.raises(TooFewSurvivors):
        relay.clients[1].unmask(UnmaskRequest(relay.session, (1, 2, 3), (4, 5)))


# -- case 3: bad local input drops this client only -------------------------------------------


@pytest.mark.parametrize(
    ("update", "error"),
    [
        ([np.zeros(2)], ShapeError),  # one vector missing
        ([np.zeros(2), np.zeros(M - 2), np.zeros(1)], ShapeError),  # one too many
        ([np.zeros(2), np.zeros(M - 1)], ShapeError),  # wrong length, never broadcast
        ([np.zeros(2), np.zeros(1)], ShapeError),  # length 1 would broadcast silently
        ([np.zeros((1, 2)), np.zeros(M - 2)], ShapeError),
        (np.zeros(M), ShapeError),  # a bare array instead of a list of vectors
        ([np.zeros(2, dtype=np.int32), np.zeros(M - 2)], DTypeError),
        ([np.zeros(2), np.zeros(M - 2, dtype=np.complex64)], DTypeError),
        ([[0.0, 0.0], np.zeros(M - 2)], DTypeError),
        ([np.array([np.nan, 0.0]), np.zeros(M - 2)], ValueOutOfRange),
    ],
    ids=[
        "too-few",
        "too-many",
        "length",
        "length-one",
        "2d",
        "bare",
        "int",
        "complex",
        "list",
        "nan",
    ],
)
def test_wrong_vector_count_length_or_dtype_is_rejected(update: object, error: type) -> None:
    relay = Relay.build()
    relay.share()
    client = relay.clients[2]
    with pytest.raises(error):
        client.masked_input(relay.masked_request(2), update, 3)  # type: ignore[arg-type]
    assert client.stage is None  # the session is abandoned: this client drops out
    others = relay.clients[3].masked_input(relay.masked_request(3), _update(3), 3)
    assert others.vector.shape == (M + 2,)


def test_clip_count_is_reported_locally() -> None:
    relay = Relay.build()
    relay.share()
    client = relay.clients[5]
    client.masked_input(relay.masked_request(5), _update(5), 3)  # |values| up to 2.5 > 1.0
    assert client.last_clip_count == int(np.count_nonzero(np.abs(np.linspace(-2.5, 2.5, M)) > 1))


# -- case 4: replay and other sessions --------------------------------------------------------


def test_repeated_requests_within_a_session_are_rejected() -> None:
    relay = Relay.build()
    relay.share()
    with pytest.raises(ReplayError):
        relay.clients[1].share_keys(relay.key_request)  # type: ignore[arg-type]
    relay.clients[1].masked_input(relay.masked_request(1), _update(1), 3)
    with pytest.raises(ReplayError):
        relay.clients[1].masked_input(relay.masked_request(1), _update(1), 3)
    # a replay leaves the session intact: the client still answers the next stage
    assert relay.clients[1].stage == Stage.MASKED_INPUT_COLLECTION
    assert relay.clients[1].session_id == relay.session


def test_requests_out_of_stage_order_are_rejected() -> None:
    relay = Relay.build()
    relay.share()
    client = relay.clients[1]
    with pytest.raises(StageError):
        client.unmask(UnmaskRequest(relay.session, (1, 2, 3, 4, 5), ()))
    with pytest.raises(StageError):
        client.masked_input(relay.key_request, _update(1), 3)  # type: ignore[arg-type]
    with pytest.raises(StageError):
        client.advertise_keys(relay.masked_request(1).to_bytes())
    # None of this disturbed the session.
    assert client.masked_input(relay.masked_request(1).to_bytes(), _update(1), 3)


def test_messages_of_another_session_do_not_verify() -> None:
    old = Relay.build()
    old.share()
    old_request = old.masked_request(1)
    new = Relay.build()
    new.nonce = b"M" * 32
    new.share()
    client = new.clients[1]
    with pytest.raises(SessionMismatch):
        client.masked_input(old_request, _update(1), 3)
    # Old ciphertexts relabelled with the new session id fail authentication: the client
    # accuses every sender and, left below the threshold, refuses to mask.
    forged = MaskedInputRequest(1, new.session, old_request.shares)
    with pytest.raises(TooFewSurvivors, match=r"accused: \[2, 3, 4, 5\]"):
        client.masked_input(forged, _update(1), 3)


def test_a_different_configuration_cannot_join() -> None:
    relay = Relay.build()
    other = SecAggConfig(client_ids=tuple(range(1, N + 1)), vector_lengths=(M,))
    with pytest.raises(SessionMismatch):
        relay.clients[1].advertise_keys(AdvertiseKeysRequest(b"N" * 32, other.digest))


# -- case 5: integrity -------------------------------------------------------------------------


@pytest.mark.parametrize("where", [0, 40, -1], ids=["ciphertext-start", "middle", "tag"])
def test_a_tampered_share_ciphertext_is_rejected(where: int) -> None:
    relay = Relay.build()
    relay.share()
    request = relay.masked_request(1)
    first = request.shares[0]
    data = bytearray(first.ciphertext)
    data[where] ^= 0x01
    tampered = EncryptedShare(
        first.peer, first.nonce, bytes(data), first.key_commitment, first.seed_commitment
    )
    reply = relay.clients[1].masked_input(
        MaskedInputRequest(1, relay.session, (tampered, *request.shares[1:])), _update(1), 3
    )
    # The client does not abandon its session: it masks without the sender and accuses it.
    assert reply.accused == (first.peer,)
    assert relay.clients[1].stage == Stage.MASKED_INPUT_COLLECTION


def test_a_share_that_does_not_match_its_commitment_is_an_accusation() -> None:
    relay = Relay.build()
    relay.share()
    request = relay.masked_request(1)
    last = request.shares[-1]
    lying = EncryptedShare(last.peer, last.nonce, last.ciphertext, bytes(32), last.seed_commitment)
    reply = relay.clients[1].masked_input(
        MaskedInputRequest(1, relay.session, (*request.shares[:-1], lying)), _update(1), 3
    )
    assert reply.accused == (last.peer,)
    session = relay.clients[1]._session  # test oracle: the client's own c key pair
    assert session is not None
    with pytest.raises(DecryptionError, match="commitments"):
        open_share(1, session.c_keys, relay.session, session.u1[last.peer][0], lying)


def test_a_share_redirected_to_another_client_is_rejected() -> None:
    relay = Relay.build()
    relay.share()
    meant_for_2 = relay.masked_request(2).shares  # from 1, 3, 4, 5 to client 2
    from_3 = [item for item in meant_for_2 if item.peer == 3]
    request = relay.masked_request(1)
    forged = tuple(from_3 if item.peer == 3 else [item] for item in request.shares)
    reply = relay.clients[1].masked_input(
        MaskedInputRequest(1, relay.session, tuple(x for group in forged for x in group)),
        _update(1),
        3,
    )
    assert reply.accused == (3,)


def test_shares_from_a_sender_outside_the_session_are_rejected() -> None:
    relay = Relay.build()
    relay.share()
    request = relay.masked_request(1)
    stranger = EncryptedShare(42, b"n" * 12, request.shares[0].ciphertext)
    with pytest.raises(UnknownClient):
        relay.clients[1].masked_input(
            MaskedInputRequest(1, relay.session, (*request.shares, stranger)), _update(1), 3
        )


def _key_request_with(
    base: ShareKeysRequest, replace: dict[int, tuple[bytes, bytes]]
) -> ShareKeysRequest:
    keys = tuple((cid, *replace.get(cid, (c, s))) for cid, c, s in base.keys)
    return ShareKeysRequest(base.nonce, base.config_digest, keys)


def test_duplicate_public_keys_in_the_key_list_are_rejected() -> None:
    relay = Relay.build()
    base = relay.advertise()
    copied = {3: (base.keys[1][1], base.keys[2][2])}  # client 3 re-advertises client 2's c key
    request = _key_request_with(base, copied)
    with pytest.raises(DuplicatePublicKey):
        relay.clients[1].share_keys(request)


def test_a_low_order_public_key_in_the_key_list_is_rejected() -> None:
    relay = Relay.build()
    base = relay.advertise()
    request = _key_request_with(base, {4: (bytes(32), base.keys[3][2])})
    with pytest.raises(InvalidPublicKey):
        relay.clients[1].share_keys(request)


def test_a_key_list_that_alters_this_clients_keys_is_rejected() -> None:
    relay = Relay.build()
    base = relay.advertise()
    request = _key_request_with(base, {1: (base.keys[1][1], base.keys[0][2])})
    with pytest.raises(SessionMismatch):
        relay.clients[1].share_keys(request)


def test_a_key_list_naming_an_unknown_client_is_rejected() -> None:
    relay = Relay.build()
    base = relay.advertise()
    extra = ShareKeysRequest(
        base.nonce, base.config_digest, (*base.keys, (99, b"\x09" * 32, b"\x0a" * 32))
    )
    with pytest.raises(UnknownClient):
        relay.clients[1].share_keys(extra)


def test_a_key_list_below_threshold_is_refused() -> None:
    relay = Relay.build()
    base = relay.advertise()
    short = ShareKeysRequest(base.nonce, base.config_digest, base.keys[:3])  # t = 4
    with pytest.raises(TooFewSurvivors):
        relay.clients[1].share_keys(short)


# -- case 8: coordinator restart --------------------------------------------------------------


def test_a_new_round_nonce_abandons_the_old_session_and_draws_fresh_keys() -> None:
    relay = Relay.build()
    relay.submit_all()
    old_session = relay.session
    old_keys = relay.key_request.keys  # type: ignore[union-attr]
    relay.nonce = b"R" * 32  # the restarted coordinator's fresh nonce
    relay.share()
    assert relay.session != old_session
    new_keys = relay.key_request.keys  # type: ignore[union-attr]
    assert not {k for _, c, s in old_keys for k in (c, s)} & {
        k for _, c, s in new_keys for k in (c, s)
    }
    for client in relay.clients.values():
        with pytest.raises(SessionMismatch):
            client.unmask(UnmaskRequest(old_session, (1, 2, 3, 4, 5), ()))


def test_a_replayed_round_nonce_is_refused() -> None:
    relay = Relay.build()
    relay.advertise()
    with pytest.raises(ReplayError):
        relay.clients[1].advertise_keys(AdvertiseKeysRequest(relay.nonce, relay.config.digest))


# -- case 9: client-side deadlines ------------------------------------------------------------


@pytest.mark.parametrize(
    "stage", [Stage.SHARE_KEYS, Stage.MASKED_INPUT_COLLECTION, Stage.UNMASKING]
)
def test_a_request_arriving_after_the_stage_deadlines_is_refused(stage: Stage) -> None:
    relay = Relay.build()
    timeouts = relay.config.timeouts
    # semi-honest: Unmasking follows MaskedInputCollection directly
    answered = Stage.MASKED_INPUT_COLLECTION if stage == Stage.UNMASKING else stage - 1
    limit = timeouts.for_stage(answered) + timeouts.for_stage(stage)
    if stage == Stage.SHARE_KEYS:
        relay.advertise()
        relay.clock.now += limit + 1
        with pytest.raises(StageTimeout):
            relay.clients[1].share_keys(relay.key_request)  # type: ignore[arg-type]
    elif stage == Stage.MASKED_INPUT_COLLECTION:
        relay.share()
        relay.clock.now += limit + 1
        with pytest.raises(StageTimeout):
            relay.clients[1].masked_input(relay.masked_request(1), _update(1), 3)
    else:
        relay.submit_all()
        relay.clock.now += limit + 1
        with pytest.raises(StageTimeout):
            relay.clients[1].unmask(UnmaskRequest(relay.session, (1, 2, 3, 4, 5), ()))
    assert relay.clients[1].stage is None


def test_a_request_just_within_the_deadline_is_answered() -> None:
    relay = Relay.build()
    relay.share()
    timeouts = relay.config.timeouts
    relay.clock.now += timeouts.share_keys + timeouts.masked_input_collection
    assert relay.clients[1].masked_input(relay.masked_request(1), _update(1), 3)


def test_respond_answers_each_stage_as_its_own_method_does() -> None:
    """The transports' one entry point gives the same bytes as the stage methods."""
    by_method, by_respond = Relay.build(seed=b"same"), Relay.build(seed=b"same")
    request = AdvertiseKeysRequest(by_method.nonce, by_method.config.digest)
    for cid in by_method.clients:
        assert (
            by_method.clients[cid].advertise_keys(request).to_bytes()
            == by_respond.clients[cid].respond(request.to_bytes()).to_bytes()
        )
    relay = Relay.build()
    relay.share()
    client = relay.clients[1]
    with pytest.raises(StageError, match="needs the update"):
        client.respond(relay.masked_request(1))
    assert client.respond(relay.masked_request(1), _update(1), 3).client_id == 1
    with pytest.raises(StageError, match="not a request a client answers"):
        client.respond(relay.share_replies[2])
