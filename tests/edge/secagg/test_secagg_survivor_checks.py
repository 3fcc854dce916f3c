"""The survivor-set checks a client makes before it signs or reveals a share
(edge/secagg/survivor_checks.py), table-driven, with real Ed25519 consistency signatures."""

from __future__ import annotations

import pytest

from edge.secagg import UnmaskRequest
from edge.secagg.errors import BadSignature, InconsistentUnmaskRequest, TooFewSurvivors
from edge.secagg.identity import SigningKey, VerifyingKey
from edge.secagg.session import consistency_statement
from edge.secagg.survivor_checks import check_alive, check_consistency, check_partition

SESSION = bytes(range(32))
ME = 1
T = 3
HOLDERS = frozenset({1, 2, 3, 4, 5})  # U2 as this client sees it
ACCUSED = frozenset({6})  # a sender whose shares did not open here


@pytest.mark.parametrize(
    ("alive", "error", "match"),
    [
        ((2, 1, 3), InconsistentUnmaskRequest, "sorted"),
        ((1, 1, 2, 3), InconsistentUnmaskRequest, "sorted"),
        ((2, 3, 4), InconsistentUnmaskRequest, "does not list this client"),
        ((1, 2, 6), InconsistentUnmaskRequest, r"names \[6\]"),
        ((1, 2), TooFewSurvivors, "only 2 survivors"),
    ],
)
def test_a_survivor_set_that_is_not_this_clients_view_is_refused(
    alive: tuple[int, ...], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        check_alive(ME, T, HOLDERS, alive)


def test_a_sound_survivor_set_comes_back_as_a_tuple() -> None:
    assert check_alive(ME, T, HOLDERS, [1, 3, 5]) == (1, 3, 5)


@pytest.mark.parametrize(
    ("alive", "dropped", "match"),
    [
        ((1, 2, 2, 3), (4, 5, 6), "twice"),
        ((1, 2, 3), (4, 4, 5, 6), "twice"),
        ((1, 2, 3, 4), (4, 5, 6), r"\[4\] as both alive and dropped"),
        ((2, 3, 4), (1, 5, 6), "this client as dropped"),
        ((1, 2, 3), (4, 5, 6, 9), r"names \[9\]"),
        ((1, 2, 3), (4, 5), "does not partition"),
        ((1, 2, 3, 6), (4, 5), "whose shares this client does not hold"),
    ],
)
def test_an_unmask_request_that_does_not_partition_the_session_is_refused(
    alive: tuple[int, ...], dropped: tuple[int, ...], match: str
) -> None:
    with pytest.raises(InconsistentUnmaskRequest, match=match):
        check_partition(ME, T, HOLDERS, ACCUSED, alive, dropped)


def test_the_accused_may_be_listed_dropped_but_nothing_else_is_missing() -> None:
    check_partition(ME, T, HOLDERS, ACCUSED, (1, 2, 3), (4, 5, 6))
    check_partition(ME, T, HOLDERS, frozenset(), (1, 2, 3, 4, 5), ())


KEYS = {cid: SigningKey(bytes([cid]) * 32) for cid in range(1, 6)}
SIGNERS = {cid: VerifyingKey(key.public) for cid, key in KEYS.items()}
ALIVE = (1, 2, 3, 4)


def _signed(ids: tuple[int, ...], alive: tuple[int, ...] = ALIVE) -> tuple[tuple[int, bytes], ...]:
    return tuple((cid, KEYS[cid].sign(consistency_statement(SESSION, alive))) for cid in ids)


def _check(request: UnmaskRequest, signed_alive: tuple[int, ...] | None = ALIVE) -> None:
    check_consistency(T, SESSION, signed_alive, SIGNERS, request)


def test_t_valid_signatures_on_the_signed_set_pass() -> None:
    _check(UnmaskRequest(SESSION, ALIVE, (5,), _signed((1, 2, 3))))
    # only the first t are read: a bad fourth one does not matter
    _check(UnmaskRequest(SESSION, ALIVE, (5,), (*_signed((1, 2, 3)), (4, bytes(64)))))


# (alive in the request, who signed, the set they signed, the set this client signed, ...)
@pytest.mark.parametrize(
    ("alive", "ids", "signed_on", "signed_alive", "error", "match"),
    [
        (ALIVE, (1, 2, 3), ALIVE, None, InconsistentUnmaskRequest, "another survivor set"),
        ((1, 2, 3), (1, 2, 3), (1, 2, 3), ALIVE, InconsistentUnmaskRequest, "another survivor"),
        (ALIVE, (1, 2, 2), ALIVE, ALIVE, InconsistentUnmaskRequest, "repeats a signer"),
        (ALIVE, (1, 2, 5), ALIVE, ALIVE, InconsistentUnmaskRequest, r"of \[5\]"),
        (ALIVE, (1, 2), ALIVE, ALIVE, InconsistentUnmaskRequest, "only 2 survivors signed"),
        (ALIVE, (1, 2, 3), (1, 2, 3), ALIVE, BadSignature, "client 1"),
    ],
)
def test_consistency_signatures_that_do_not_prove_the_signed_set_are_refused(
    alive: tuple[int, ...],
    ids: tuple[int, ...],
    signed_on: tuple[int, ...],
    signed_alive: tuple[int, ...] | None,
    error: type[Exception],
    match: str,
) -> None:
    dropped = tuple(sorted(set(KEYS) - set(alive)))
    request = UnmaskRequest(SESSION, alive, dropped, _signed(ids, signed_on))
    with pytest.raises(error, match=match):
        _check(request, signed_alive)
