"""Normalisation policy and the saved, versioned vocabulary."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.encoding import PAD_ID, UNK_ID, Vocab, VocabError, normalize_name


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Rafaj1 ", "Rafaj"),
        ("Lu:", "Lu"),
        ("O'Brien", "O'Brien"),
        ("Smith-Jones", "Smith-Jones"),
        ("Mc  Donald", "Mc Donald"),
        ("Ła\u0301zaro", "Łázaro"),  # combining accent composed (NFC), accent kept
        ("Groß", "Groß"),
    ],
)
def test_normalize_keeps_letters_accents_and_case(raw: str, expected: str) -> None:
    assert normalize_name(raw) == expected


def test_encode_left_pads_and_keeps_the_suffix_when_truncating() -> None:
    v = Vocab.build(["abcdef"], max_len=4)
    ids = v.encode(["ab", "abcdef", "zz"])
    a, b, c, d, e, f = (v.chars.index(ch) + 2 for ch in "abcdef")
    assert ids.tolist() == [[PAD_ID, PAD_ID, a, b], [c, d, e, f], [PAD_ID, PAD_ID, UNK_ID, UNK_ID]]
    assert ids.dtype == np.int32


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=20), st.integers(1, 25))
def test_vocab_round_trips_through_json_and_encodes_identically(
    names: list[str], max_len: int
) -> None:
    v = Vocab.build((normalize_name(n) for n in names), max_len)
    w = Vocab.from_json(v.to_json())
    assert w == v and w.version == v.version
    assert np.array_equal(w.encode(names), v.encode(names))


def test_vocab_rejects_unknown_format_and_garbage() -> None:
    with pytest.raises(VocabError, match="format 99"):
        Vocab.from_json('{"format": 99, "max_len": 3, "chars": "ab"}')
    with pytest.raises(VocabError, match="malformed"):
        Vocab.from_json("{not json")
