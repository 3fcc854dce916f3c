"""settle_accusations: whom the MaskedInput accusations exclude, in what order and why.

The whole-round behaviour (the accused's vector left out, its masks removed) is tested through
ServerProtocol in test_secagg_server.py; here each rule is pinned on its own.
"""

from __future__ import annotations

import pytest

from federated.secagg_accusations import settle_accusations

VOID = "more than the 1 colluders the config assumes; its accusations are void"


def test_no_accusations_exclude_nobody() -> None:
    verdict = settle_accusations([1, 2, 3, 4], {1: (), 2: ()}, c=1)
    assert verdict.excluded == () and dict(verdict.accusers) == {}


def test_an_accusation_within_the_bound_excludes_the_accused() -> None:
    verdict = settle_accusations([1, 2, 3, 4], {1: (3,), 2: (3,)}, c=1)
    assert verdict.excluded == ((3, "its sealed shares did not open or verify for clients [1, 2]"),)
    assert dict(verdict.accusers) == {3: {1, 2}}


def test_an_accuser_of_more_than_c_peers_is_excluded_and_its_accusations_are_void() -> None:
    verdict = settle_accusations([1, 2, 3, 4], {1: (2, 3)}, c=1)
    assert verdict.excluded == ((1, f"accused 2 peers, {VOID}"),)
    # 2 and 3 stay in, but 1 still masked without them: it holds none of their shares.
    assert dict(verdict.accusers) == {2: {1}, 3: {1}}


def test_an_accused_liar_is_excluded_twice_and_keeps_the_later_reason() -> None:
    verdict = settle_accusations([1, 2, 3, 4], {1: (2, 3), 4: (1,)}, c=1)
    assert [cid for cid, _ in verdict.excluded] == [1, 1]
    assert verdict.excluded[-1][1] == "its sealed shares did not open or verify for clients [4]"


@pytest.mark.parametrize("c", [1, 2])
def test_one_honest_accuser_is_enough_even_beside_a_liar(c: int) -> None:
    liar_accuses = tuple(range(2, c + 3))  # c + 1 peers: over the bound
    verdict = settle_accusations([1, 2, 3, 4, 5], {1: liar_accuses, 5: (2,)}, c=c)
    excluded = dict(verdict.excluded)
    assert set(excluded) == {1, 2}
    assert excluded[2].endswith("for clients [1, 5]")  # the liar is named among its accusers
