"""Whole secure-aggregation rounds: ClientProtocol x n against ServerProtocol, over real bytes.

Covers cases 1 (dropouts), 2 and 3 (through the server), 4 (replay), 5 (integrity), 8 (restart),
9 (timeouts) and 10 (curious server) of docs/secure-aggregation.md, plus the known-answer vector
of the wire bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.secagg import (
    AdvertiseKeysReply,
    ClientMessage,
    ClientProtocol,
    ConfigError,
    DeterministicRandom,
    DTypeError,
    DuplicatePublicKey,
    EncryptedShare,
    InconsistentUnmaskRequest,
    InvalidPublicKey,
    MaskedInputReply,
    NotEnoughShares,
    ReplayError,
    RoundAborted,
    SecAggConfig,
    SessionMismatch,
    ShapeError,
    ShareKeysReply,
    ShareVerificationError,
    Stage,
    StageError,
    StageTimeout,
    TooFewSurvivors,
    UnknownClient,
    UnmaskReply,
    UnmaskRequest,
    ValueOutOfRange,
    decode_message,
)
from edge.secagg.keys import X25519KeyPair
from edge.secagg.masking import add_prg, pairwise_seed
from edge.secagg.session import self_mask_commitment
from edge.secagg.shamir import combine_shares
from federated.secagg_local import LocalRound, ManualClock, TestAuthority, seeded_parties
from federated.secagg_result import AggregateResult
from federated.secagg_server import ServerProtocol

AUTHORITY = TestAuthority(b"test_secagg_server")
SCALE = 2.0**10  # exact inputs: multiples of 1/SCALE quantise without rounding
MAX_WEIGHT = 4


class Round(LocalRound):
    """One session of these tests' shape (two vectors, small weights), driven over bytes.

    The relay, the transcript and the recorded rejections are federated.secagg_local's
    LocalRound; this adds the configuration, the seeded inputs and the expected sum.
    """

    def __init__(
        self,
        n: int = 7,
        m: int = 5,
        *,
        seed: bytes = b"round",
        bit_width: int = 32,
        exact: bool = True,
        clients: dict[int, ClientProtocol] | None = None,
        clock: ManualClock | None = None,
        active: bool = True,
        threshold: int | None = None,
        colluders: int | None = None,
    ) -> None:
        self.config = SecAggConfig(
            client_ids=tuple(range(1, n + 1)),
            vector_lengths=(2, m - 2),
            bit_width=bit_width,
            max_weight=MAX_WEIGHT,
            scale=SCALE if exact else None,
            active=active,
            threshold=threshold,
            colluders=colluders,
        )
        clock = clock or ManualClock()
        self.authority = AUTHORITY
        server, parties = seeded_parties(
            self.config, seed + b"/s", lambda cid: seed + b"/c%d" % cid, clock, AUTHORITY
        )
        clients = clients or parties
        rs = np.random.default_rng(list(seed))
        if exact:
            self.updates = {cid: rs.integers(-1024, 1025, m) / 1024.0 for cid in clients}
        else:
            self.updates = {cid: rs.uniform(-1.2, 1.2, m) for cid in clients}
        examples = {cid: int(rs.integers(1, 7)) for cid in clients}
        super().__init__(server, clients, clock, {}, examples, catch=True)
        self.start()

    def client_input(self, cid: int) -> list[np.ndarray]:
        update = self.updates[cid]
        return [update[:2], update[2:]]

    def expected(self, survivors: tuple[int, ...]) -> np.ndarray:
        return sum(
            (
                min(self.examples[c], MAX_WEIGHT) * np.clip(self.updates[c], -1, 1)
                for c in survivors
            ),
            np.zeros(len(self.updates[1])),
        )


def _exact(result: AggregateResult, rnd: Round) -> None:
    got = np.concatenate(result.weighted_sum)
    np.testing.assert_array_equal(got, rnd.expected(result.survivors))
    weights = sum(min(rnd.examples[c], MAX_WEIGHT) for c in result.survivors)
    assert result.weight_sum == weights
    assert result.clip_count == 0
    levels = (rnd.expected(result.survivors) * SCALE).astype(np.int64)
    ring = np.concatenate([levels, [weights, 0]]).astype(np.uint64) & np.uint64(2**32 - 1)
    np.testing.assert_array_equal(result.ring_sum.astype(np.uint64), ring)


# -- case 1: dropouts ------------------------------------------------------------------------


def test_a_round_without_dropouts_gives_the_exact_weighted_sum_and_mean() -> None:
    rnd = Round()
    result = rnd.run()
    assert result.survivors == rnd.config.client_ids
    assert not result.dropped and not rnd.client_errors and not rnd.server_errors
    _exact(result, rnd)
    mean = np.concatenate(result.mean())
    np.testing.assert_allclose(mean, rnd.expected(result.survivors) / result.weight_sum)


@pytest.mark.parametrize("stage", list(Stage), ids=lambda s: s.name)
def test_n_minus_t_dropouts_at_any_stage_still_give_the_exact_survivor_sum(stage: Stage) -> None:
    rnd = Round(n=7)  # t = 5: two may drop
    rnd.silent[stage] = {2, 6}
    result = rnd.run()
    assert dict(result.dropped) == {2: stage, 6: stage}
    if stage >= Stage.CONSISTENCY_CHECK:  # their masked inputs are in; their answers missing
        assert result.survivors == (1, 2, 3, 4, 5, 6, 7)
    else:
        assert result.survivors == (1, 3, 4, 5, 7)
    _exact(result, rnd)


def test_dropouts_spread_over_several_stages_still_give_the_exact_sum() -> None:
    rnd = Round(n=10)  # t = 7: three may drop
    rnd.silent[Stage.ADVERTISE_KEYS] = {10}
    rnd.silent[Stage.SHARE_KEYS] = {4}
    rnd.silent[Stage.MASKED_INPUT_COLLECTION] = {1}
    result = rnd.run()
    assert result.survivors == (2, 3, 5, 6, 7, 8, 9)
    _exact(result, rnd)


@pytest.mark.parametrize("stage", list(Stage), ids=lambda s: s.name)
def test_one_dropout_too_many_aborts_the_round_and_reveals_nothing(stage: Stage) -> None:
    rnd = Round(n=7)
    rnd.silent[stage] = {2, 4, 6}
    with pytest.raises(TooFewSurvivors):
        rnd.run()
    assert rnd.server.aborted
    with pytest.raises(RoundAborted):
        _ = rnd.server.result
    with pytest.raises(RoundAborted):
        rnd.server.poll()
    replies = [decode_message(d) for d in rnd.to_server]
    unmask_replies = [r for r in replies if isinstance(r, UnmaskReply)]
    if stage != Stage.UNMASKING:
        assert not unmask_replies  # nobody was ever asked to reveal a share
        return
    # Only t - 1 clients answered: no seed or key can be rebuilt from what the server holds.
    assert len(unmask_replies) == rnd.config.t - 1
    holders = {cid: i + 1 for i, cid in enumerate(rnd.config.client_ids)}
    with pytest.raises(NotEnoughShares):
        combine_shares(
            {holders[r.client_id]: r.seed_shares[0][1] for r in unmask_replies}, rnd.config.t
        )


@st.composite
def dropout_plans(draw: st.DrawFn) -> tuple[int, dict[int, Stage]]:
    n = draw(st.integers(3, 6))
    slack = n - SecAggConfig(client_ids=tuple(range(1, n + 1)), vector_lengths=(1,)).t
    who = draw(st.lists(st.integers(1, n), unique=True, max_size=slack))
    return n, {cid: draw(st.sampled_from(list(Stage))) for cid in who}


@settings(max_examples=10, deadline=None)
@given(dropout_plans(), st.binary(min_size=1, max_size=4))
def test_any_dropout_pattern_within_n_minus_t_sums_the_survivors_within_the_quantisation_bound(
    plan: tuple[int, dict[int, Stage]], seed: bytes
) -> None:
    n, drops = plan
    rnd = Round(n=n, seed=seed, exact=False)
    for cid, stage in drops.items():
        rnd.silent[stage].add(cid)
    result = rnd.run()
    late = {cid for cid, stage in drops.items() if stage >= Stage.CONSISTENCY_CHECK}
    assert set(result.survivors) == set(rnd.config.client_ids) - set(drops) | late
    error = np.abs(np.concatenate(result.weighted_sum) - rnd.expected(result.survivors))
    assert np.all(error < len(result.survivors) * rnd.config.quantisation.error_bound)
    assert result.clip_count == sum(
        int(np.count_nonzero(np.abs(rnd.updates[c]) > 1.0)) for c in result.survivors
    )


# -- case 2: clients refuse inconsistent unmasking requests (through the server) --------------


@pytest.mark.parametrize(
    ("forge", "refusers"),
    [
        (lambda r: UnmaskRequest(r.session_id, r.alive, (r.alive[-1],)), {1, 2, 3, 4, 5}),
        (lambda r: UnmaskRequest(r.session_id, (*r.alive, r.alive[0]), r.dropped), {1, 2, 3, 4, 5}),
        (lambda r: UnmaskRequest(r.session_id, r.alive, (77,)), {1, 2, 3, 4, 5}),
        # Every client signed the true survivor set in ConsistencyCheck, so all refuse (in the
        # semi-honest variant only 1 would: see the self-mask test of case 10).
        (lambda r: UnmaskRequest(r.session_id, r.alive[1:], (r.alive[0],)), {1, 2, 3, 4, 5}),
    ],
    ids=["alive-and-dropped", "repeat", "unknown", "self-dropped"],
)
def test_clients_refuse_a_forged_unmask_request_and_the_round_aborts(
    forge: Callable[[UnmaskRequest], UnmaskRequest], refusers: set[int]
) -> None:
    rnd = Round(n=5)
    rnd.run_until(Stage.UNMASKING)
    rnd.tamper_request = lambda cid, m: forge(m) if isinstance(m, UnmaskRequest) else m
    with pytest.raises(TooFewSurvivors):
        rnd.run()
    assert set(rnd.client_errors) == refusers
    assert all(isinstance(e, InconsistentUnmaskRequest) for e in rnd.client_errors.values())
    answered = {
        m.client_id for m in map(decode_message, rnd.to_server) if isinstance(m, UnmaskReply)
    }
    assert answered == {1, 2, 3, 4, 5} - refusers


# -- case 3: malformed inputs drop that client only --------------------------------------------


@pytest.mark.parametrize(
    ("tamper", "error", "bit_width"),
    [
        (lambda v: v[:-1], ShapeError, 32),
        (lambda v: np.concatenate([v, v[:1]]), ShapeError, 32),
        (lambda v: v[:1], ShapeError, 32),
        (lambda v: v.astype(np.uint16), DTypeError, 32),
        (lambda v: v.astype(np.uint64), DTypeError, 32),
        (lambda v: np.where(np.arange(v.shape[0]) == 0, np.uint32(2**24), v), ValueOutOfRange, 24),
    ],
    ids=["short", "long", "length-one", "narrow-dtype", "wide-dtype", "beyond-bit-width"],
)
def test_a_malformed_masked_vector_drops_that_client_only(
    tamper: Callable[[np.ndarray], np.ndarray], error: type, bit_width: int
) -> None:
    rnd = Round(n=5, bit_width=bit_width)

    def corrupt(reply: ClientMessage) -> ClientMessage:
        if isinstance(reply, MaskedInputReply) and reply.client_id == 3:
            return MaskedInputReply(3, reply.session_id, tamper(reply.vector))
        return reply

    rnd.tamper_reply = corrupt
    result = rnd.run()
    assert [type(e) for e in rnd.server_errors] == [error]
    assert dict(result.dropped) == {3: Stage.MASKED_INPUT_COLLECTION}
    assert result.survivors == (1, 2, 4, 5)
    np.testing.assert_array_equal(
        np.concatenate(result.weighted_sum), rnd.expected(result.survivors)
    )


def test_a_client_with_a_wrong_length_update_drops_out_and_the_rest_sum_exactly() -> None:
    rnd = Round(n=5)
    rnd.updates[2] = rnd.updates[2][:-1]
    result = rnd.run()
    assert isinstance(rnd.client_errors[2], ShapeError)
    assert result.survivors == (1, 3, 4, 5)
    _exact(result, rnd)


# -- case 4: replay and other sessions ---------------------------------------------------------


@pytest.mark.parametrize("stage", list(Stage), ids=lambda s: s.name)
def test_a_repeated_message_is_rejected_and_does_not_count_twice(stage: Stage) -> None:
    rnd = Round(n=5)
    rnd.run_until(stage)
    replies = {cid: rnd.answer(cid, m.to_bytes()) for cid, m in rnd.outbox.items()}
    for reply in replies.values():
        assert reply is not None
        rnd.server.receive(reply.to_bytes())
    with pytest.raises(ReplayError):
        rnd.server.receive(replies[1].to_bytes())  # type: ignore[union-attr]
    rnd.outbox = rnd.server.poll()
    result = rnd.run()
    assert not result.dropped
    _exact(result, rnd)


def test_messages_from_another_session_do_not_verify_at_the_server() -> None:
    a = Round(n=4, seed=b"session-a")
    b = Round(n=4, seed=b"session-b")
    a.run_until(Stage.UNMASKING)
    b.run_until(Stage.UNMASKING)
    for data in a.to_server:
        message = decode_message(data)
        if isinstance(message, MaskedInputReply):
            with pytest.raises((SessionMismatch, ReplayError, StageError)):
                b.server.receive(message)
    a_unmask = next(iter(a.outbox.values()))
    for client in b.clients.values():  # and b's clients never answer a's unmasking request
        with pytest.raises(SessionMismatch):
            client.unmask(a_unmask)
    _exact(b.run(), b)


def test_a_reply_from_another_session_is_a_session_mismatch() -> None:
    a = Round(n=4, seed=b"session-a")
    b = Round(n=4, seed=b"session-b")
    a.step()  # a collects AdvertiseKeys and moves on
    stale = decode_message(a.to_server[0])
    assert isinstance(stale, AdvertiseKeysReply)
    with pytest.raises(SessionMismatch):
        b.server.receive(stale)


# -- case 5: integrity ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("forge", "error"),
    [
        (
            lambda r, keys: AdvertiseKeysReply(r.client_id, r.nonce, bytes(32), r.s_public),
            InvalidPublicKey,
        ),
        (
            lambda r, keys: AdvertiseKeysReply(r.client_id, r.nonce, b"\xff" * 32, r.s_public),
            InvalidPublicKey,
        ),
        (
            lambda r, keys: AdvertiseKeysReply(r.client_id, r.nonce, r.c_public, r.c_public),
            DuplicatePublicKey,
        ),
        (lambda r, keys: AdvertiseKeysReply(r.client_id, r.nonce, *keys[1]), DuplicatePublicKey),
    ],
    ids=["low-order", "non-canonical", "c-equals-s", "copied-from-client-1"],
)
def test_bad_public_keys_are_rejected_and_drop_their_sender(
    forge: Callable[[AdvertiseKeysReply, dict[int, tuple[bytes, bytes]]], AdvertiseKeysReply],
    error: type,
) -> None:
    rnd = Round(n=5)
    seen: dict[int, tuple[bytes, bytes]] = {}

    def tamper(reply: ClientMessage) -> ClientMessage:
        if isinstance(reply, AdvertiseKeysReply):
            seen[reply.client_id] = (reply.c_public, reply.s_public)
            if reply.client_id == 4:
                return forge(reply, seen)
        return reply

    rnd.tamper_reply = tamper
    result = rnd.run()
    assert [type(e) for e in rnd.server_errors] == [error]
    assert dict(result.dropped) == {4: Stage.ADVERTISE_KEYS}
    _exact(result, rnd)


def _garble_shares_of(
    sender: int, recipients: set[int]
) -> Callable[[ClientMessage], ClientMessage]:
    """A malicious ``sender``: its sealed shares to ``recipients`` are garbage."""

    def tamper(reply: ClientMessage) -> ClientMessage:
        if isinstance(reply, ShareKeysReply) and reply.client_id == sender:
            shares = tuple(
                EncryptedShare(
                    item.peer,
                    item.nonce,
                    bytes(len(item.ciphertext)) if item.peer in recipients else item.ciphertext,
                    item.key_commitment,
                    item.seed_commitment,
                )
                for item in reply.shares
            )
            return ShareKeysReply(sender, reply.session_id, reply.commitment, shares)
        return reply

    return tamper


def test_a_client_sealing_garbage_to_every_peer_is_excluded_and_the_round_completes() -> None:
    rnd = Round(n=5)
    rnd.tamper_reply = _garble_shares_of(3, {1, 2, 4, 5})
    result = rnd.run()
    assert not rnd.client_errors  # the recipients report the sender, none abandons its session
    assert result.survivors == (1, 2, 4, 5)
    assert dict(result.dropped) == {3: Stage.MASKED_INPUT_COLLECTION}  # the culprit, not victims
    assert set(result.culprits) == {3}
    assert "did not open or verify for clients [1, 2, 4, 5]" in result.culprits[3]
    _exact(result, rnd)


def test_garbage_to_one_peer_is_excluded_when_enough_others_hold_its_shares() -> None:
    rnd = Round(n=6, threshold=4, colluders=1)
    rnd.tamper_reply = _garble_shares_of(1, {2})
    result = rnd.run()
    assert result.survivors == (2, 3, 4, 5, 6) and set(result.culprits) == {1}
    _exact(result, rnd)  # 1's masks with 3..6 removed through its rebuilt key, none with 2


def test_garbage_to_too_many_peers_aborts_naming_the_sender() -> None:
    rnd = Round(n=5)  # t = 4: garbage to 2 leaves 3 holders of 1's shares among 4 survivors
    rnd.tamper_reply = _garble_shares_of(1, {2})
    with pytest.raises(TooFewSurvivors, match=r"client 1 sealed shares that did not open"):
        rnd.run()
    assert rnd.server.culprits.keys() == {1}


@pytest.mark.parametrize("which", ["seed", "key"])
@pytest.mark.parametrize("liar", [1, 5], ids=["first-responder", "last-responder"])
def test_a_bad_shamir_share_names_its_responder_and_the_round_completes(
    which: str, liar: int
) -> None:
    rnd = Round(n=6, threshold=4, colluders=1)
    rnd.silent[Stage.MASKED_INPUT_COLLECTION] = {6}  # so key shares of 6 are revealed

    def tamper(reply: ClientMessage) -> ClientMessage:
        if isinstance(reply, UnmaskReply) and reply.client_id == liar:
            seeds, keys = list(reply.seed_shares), list(reply.key_shares)
            group = seeds if which == "seed" else keys
            pos = next(i for i, (owner, _) in enumerate(group) if owner != liar)
            owner, share = group[pos]
            group[pos] = (owner, bytes([share[0] ^ 0x40]) + share[1:])
            return UnmaskReply(liar, reply.session_id, tuple(seeds), tuple(keys))
        return reply

    rnd.tamper_reply = tamper
    assert rnd.config.t == 4  # five responders, one bad: four good ones remain
    result = rnd.run()
    assert [type(e) for e in rnd.server_errors] == [ShareVerificationError]
    assert f"client {liar} revealed a share" in str(rnd.server_errors[0])
    assert set(result.culprits) == {liar}
    assert result.survivors == (1, 2, 3, 4, 5)  # the liar's input is in; only its reply is not
    assert dict(result.dropped) == {6: Stage.MASKED_INPUT_COLLECTION, liar: Stage.UNMASKING}
    _exact(result, rnd)


def test_a_bad_share_with_no_spare_responder_aborts_and_names_the_responder() -> None:
    rnd = Round(n=5)  # t = 4: with 5 silent, the 4 responders are exactly t
    rnd.silent[Stage.MASKED_INPUT_COLLECTION] = {5}

    def tamper(reply: ClientMessage) -> ClientMessage:
        if isinstance(reply, UnmaskReply) and reply.client_id == 1:
            owner, share = reply.key_shares[0]
            bad = ((owner, bytes([share[0] ^ 1]) + share[1:]),)
            return UnmaskReply(1, reply.session_id, reply.seed_shares, bad)
        return reply

    rnd.tamper_reply = tamper
    with pytest.raises(TooFewSurvivors):
        rnd.run()
    assert rnd.server.aborted and 1 in rnd.server.culprits
    with pytest.raises(RoundAborted):
        _ = rnd.server.result


# -- case 8: coordinator restart -----------------------------------------------------------------


def test_a_restarted_coordinator_runs_a_fresh_session_and_old_unmask_requests_are_refused() -> None:
    old = Round(n=5, seed=b"before-restart")
    old.run_until(Stage.UNMASKING)
    old_request = next(iter(old.outbox.values()))
    old_keys = {
        m.client_id: (m.c_public, m.s_public)
        for m in map(decode_message, old.to_server)
        if isinstance(m, AdvertiseKeysReply)
    }
    old.server.abort("coordinator restarted")
    with pytest.raises(RoundAborted):
        old.server.receive(old.to_server[-1])

    new = Round(n=5, seed=b"after-restart", clients=old.clients, clock=old.clock)
    new.updates, new.examples = old.updates, old.examples
    result = new.run()
    _exact(result, new)
    new_keys = {
        m.client_id: (m.c_public, m.s_public)
        for m in map(decode_message, new.to_server)
        if isinstance(m, AdvertiseKeysReply)
    }
    assert all(set(old_keys[c]).isdisjoint(new_keys[c]) for c in new_keys)
    for client in new.clients.values():
        with pytest.raises(SessionMismatch):
            client.unmask(old_request)


def test_a_coordinator_restarted_with_its_old_nonce_is_refused_by_every_client() -> None:
    first = Round(n=4, seed=b"same")
    first.step()
    again = Round(n=4, seed=b"same", clients=first.clients, clock=first.clock)
    with pytest.raises(TooFewSurvivors):
        again.run()
    assert all(isinstance(e, ReplayError) for e in again.client_errors.values())
    assert len(again.client_errors) == 4


# -- case 9: every stage has a finite deadline -----------------------------------------------------


@pytest.mark.parametrize("stage", list(Stage), ids=lambda s: s.name)
def test_every_stage_closes_at_its_deadline(stage: Stage) -> None:
    rnd = Round(n=5)
    rnd.run_until(stage)
    opened = rnd.clock.now
    assert rnd.server.deadline == opened + rnd.config.timeouts.for_stage(stage)
    for cid, message in rnd.outbox.items():
        if cid != 3:
            reply = rnd.answer(cid, message.to_bytes())
            assert reply is not None
            rnd.server.receive(reply)
    rnd.clock.now = rnd.server.deadline  # not yet past it
    assert rnd.server.poll() == {}
    assert rnd.server.stage == stage
    late = rnd.answer(3, rnd.outbox[3].to_bytes())
    assert late is not None
    rnd.clock.now = rnd.server.deadline + 1e-3
    with pytest.raises(StageTimeout):
        rnd.server.receive(late)
    rnd.outbox = rnd.server.poll()
    assert rnd.server.dropped == {3: stage}
    assert rnd.server.stage != stage


# -- case 10: the curious server ---------------------------------------------------------------


def _holders(rnd: Round) -> dict[int, int]:
    return {cid: i + 1 for i, cid in enumerate(rnd.config.client_ids)}


def _signed(words: np.ndarray) -> np.ndarray:
    w = words.astype(np.int64)
    return np.where(w >= 2**31, w - 2**32, w)


def test_a_curious_server_with_the_whole_transcript_cannot_strip_pairwise_masks() -> None:
    rnd = Round(n=4, m=64)
    result = rnd.run()
    view = [decode_message(d) for d in rnd.to_server]
    masked = {m.client_id: m.vector for m in view if isinstance(m, MaskedInputReply)}
    unmask = [m for m in view if isinstance(m, UnmaskReply)]
    commitments = {m.client_id: m.commitment for m in view if isinstance(m, ShareKeysReply)}
    session = rnd.server.session_id
    assert session is not None
    # The server rebuilds every survivor's self-mask seed (and it is the real one) ...
    seeds = {}
    for pos, owner in enumerate(result.survivors):
        shares = {_holders(rnd)[r.client_id]: r.seed_shares[pos][1] for r in unmask}
        seeds[owner] = combine_shares(shares, rnd.config.t)
        assert self_mask_commitment(session, owner, seeds[owner]) == commitments[owner]
    # ... but holds not a single share of any survivor's masking key.
    assert all(not r.key_shares for r in unmask)
    bound = rnd.config.quantisation.level_bound
    for cid, vector in masked.items():
        residual = vector.copy()
        add_prg(residual, seeds[cid], 32, -1)
        # What is left is the input under pairwise masks: it decodes to nothing near a valid
        # update (every valid level lies in [-bound, bound]).
        assert np.count_nonzero(np.abs(_signed(residual[:64])) <= bound) <= 1


def test_a_server_that_falsely_reports_a_client_dropped_still_faces_its_self_mask() -> None:
    # The semi-honest variant: no ConsistencyCheck, so the lie reaches the clients' unmasking
    # (the actively secure variant refuses it: test_secagg_active.py).
    rnd = Round(n=4, m=64, active=False)
    rnd.run_until(Stage.MASKED_INPUT_COLLECTION)
    self_seed_of_1 = rnd.clients[1]._session.self_seed  # type: ignore[union-attr]  # test oracle
    rnd.step()
    assert rnd.server.stage == Stage.UNMASKING
    request = next(iter(rnd.outbox.values()))
    lie = UnmaskRequest(request.session_id, (2, 3, 4), (1,))  # client 1 did submit
    with pytest.raises(InconsistentUnmaskRequest):
        rnd.clients[1].unmask(lie)
    replies = [rnd.clients[c].unmask(lie) for c in (2, 3, 4)]
    view = [decode_message(d) for d in rnd.to_server]
    y1 = next(m.vector for m in view if isinstance(m, MaskedInputReply) and m.client_id == 1)
    keys = {m.client_id: m.s_public for m in view if isinstance(m, AdvertiseKeysReply)}
    # The lie yields client 1's masking key, verified against its advertised public key ...
    secret = combine_shares(
        {_holders(rnd)[r.client_id]: r.key_shares[0][1] for r in replies}, rnd.config.t
    )
    s1 = X25519KeyPair(secret)
    assert s1.public == keys[1]
    # ... and strips every pairwise mask from y_1, but no share of b_1 was ever revealed.
    assert all(owner != 1 for r in replies for owner, _ in r.seed_shares)
    residual = y1.copy()
    for peer in (2, 3, 4):  # client 1 added +PRG(s_1v) for every v > 1
        add_prg(residual, pairwise_seed(s1, 1, peer, keys[peer], request.session_id), 32, -1)
    bound = rnd.config.quantisation.level_bound
    assert np.count_nonzero(np.abs(_signed(residual[:64])) <= bound) <= 1
    # With b_1 (which the protocol never reveals) the same arithmetic recovers x_1 exactly:
    # the self mask is the only thing standing between this server and the input.
    add_prg(residual, self_seed_of_1, 32, -1)
    levels = min(rnd.examples[1], MAX_WEIGHT) * rnd.updates[1] * SCALE
    np.testing.assert_array_equal(_signed(residual[:64]), levels.astype(np.int64))


def test_two_inputs_with_the_same_sum_give_transcripts_that_differ_only_in_masked_vectors() -> None:
    a = Round(n=4, m=16, seed=b"worlds")
    b = Round(n=4, m=16, seed=b"worlds")
    # World b moves 0.25 from client 2 to client 1; no value leaves [-1, 1], so the sums agree.
    delta = np.full(16, 0.25)
    b.examples[1] = b.examples[2] = a.examples[1] = a.examples[2] = 1
    a.updates[1] = np.clip(a.updates[1], -0.5, 0.5)
    a.updates[2] = np.clip(a.updates[2], -0.5, 0.5)
    b.updates[1] = a.updates[1] + delta
    b.updates[2] = a.updates[2] - delta
    ra, rb = a.run(), b.run()
    np.testing.assert_array_equal(ra.ring_sum, rb.ring_sum)
    assert len(a.to_server) == len(b.to_server)
    differing = [decode_message(x) for x, y in zip(a.to_server, b.to_server, strict=True) if x != y]
    assert sorted((type(m).__name__, m.client_id) for m in differing) == [  # type: ignore[union-attr]
        ("MaskedInputReply", 1),
        ("MaskedInputReply", 2),
    ]


# -- server API ------------------------------------------------------------------------------------


def test_server_constructor_and_lifecycle_checks() -> None:
    config = SecAggConfig(client_ids=(1, 2, 3), vector_lengths=(2,))
    with pytest.raises(TypeError):
        ServerProtocol("config")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ServerProtocol(config, rng=b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ServerProtocol(config, clock=1.0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="authority"):
        ServerProtocol(config)  # the active protocol checks certificates
    server = ServerProtocol(
        config, DeterministicRandom(b"s"), ManualClock(), authority=AUTHORITY.public
    )
    with pytest.raises(StageError):
        server.poll()
    with pytest.raises(StageError):
        _ = server.result
    server.start()
    with pytest.raises(StageError):
        server.start()


def test_server_rejects_out_of_order_and_unknown_senders() -> None:
    rnd = Round(n=4)
    rnd.run_until(Stage.SHARE_KEYS)
    stale = decode_message(rnd.to_server[0])
    with pytest.raises(StageError):
        rnd.server.receive(stale)  # an AdvertiseKeysReply during ShareKeys
    with pytest.raises(StageError):
        rnd.server.receive(next(iter(rnd.outbox.values())))  # a server message
    forged = AdvertiseKeysReply(9, b"n" * 32, b"\x09" * 32, b"\x0a" * 32)
    rnd2 = Round(n=4, seed=b"other")
    with pytest.raises(UnknownClient):
        rnd2.server.receive(forged)
    _exact(rnd.run(), rnd)


# -- known-answer vector ---------------------------------------------------------------------------

#: sha256 over the length-prefixed bytes of every message of the 3-client round below. The same
#: seeds must give the same bytes on every architecture (checked under aarch64 emulation later).
#: Protocol version 2 (issue 19): the actively secure round of the default TestAuthority, with
#: signed AdvertiseKeys, share commitments and the ConsistencyCheck round (30 messages, was 24).
KAT_SHA256 = "224cd1d0c37f1233b26eee254453f175bf30a8fa67e7db98488d9a678403e527"


def test_known_answer_vector_of_a_three_client_round() -> None:
    config = SecAggConfig(client_ids=(1, 2, 3), vector_lengths=(3,))
    clock = ManualClock()
    server, clients = seeded_parties(config, b"kat-server", lambda c: b"kat-client-%d" % c, clock)
    updates = {
        1: np.array([0.5, -0.25, 0.1]),
        2: np.array([-1.5, 0.75, 0.2], dtype=np.float32),
        3: np.array([0.0, 0.3333, -0.9]),
    }
    inputs = {c: [updates[c]] for c in (1, 2, 3)}
    rnd = LocalRound(server, clients, clock, inputs, {c: 10 * c for c in (1, 2, 3)})
    rnd.run()
    wire = rnd.transcript
    result = server.result
    expected = sum(10 * c * np.clip(updates[c].astype(np.float64), -1, 1) for c in (1, 2, 3))
    assert np.all(np.abs(result.weighted_sum[0] - expected) < 3 * config.quantisation.error_bound)
    assert (result.weight_sum, result.clip_count) == (60, 1)
    digest = hashlib.sha256(b"".join(len(d).to_bytes(4, "little") + d for d in wire)).hexdigest()
    assert len(wire) == 30
    assert digest == KAT_SHA256
