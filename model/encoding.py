"""Name normalisation and the character vocabulary: the one place where text becomes ids.

Policy (documented in README):
- Unicode NFC; accents and case are kept, because ``ł``, ``ß``, ``ñ`` and an inner capital
  (``McDonald``) are strong signals for the small languages.
- Only letters, apostrophes, hyphens and single spaces survive; digits and other punctuation
  (scraping debris such as ``Rafaj1`` or ``Lu:``) are removed.
- Names longer than ``max_len`` keep their *last* ``max_len`` characters: suffixes (-ov, -ski,
  -ez) carry most of the signal. Shorter names are padded on the *left*, so the last real
  character is always the GRU's last step.
- The vocabulary is built from training names only and saved with every model; characters
  it has not seen map to UNK.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

PAD_ID = 0
UNK_ID = 1
VOCAB_FORMAT = 1


class VocabError(ValueError):
    """A saved vocabulary is malformed or of an unknown format version."""


def public_alphabet() -> tuple[str, ...]:
    """Letters of the Latin scripts (Basic Latin to Latin Extended-B) plus ``' -``.

    A fleet coordinator never sees a name, so a model it initialises cannot build its vocabulary
    from data; it uses this public character set instead (the 18-language data set fits in it).
    """
    letters = [chr(c) for c in range(0x41, 0x250) if chr(c).isalpha()]
    return tuple(sorted({*letters, "'", "-", " "}))


def normalize_name(raw: str) -> str:
    """Canonical form of one surname (see module docstring for the policy)."""
    text = unicodedata.normalize("NFC", raw)
    kept = "".join(ch for ch in text if ch.isalpha() or ch in "'- ")
    return " ".join(kept.split())


@dataclass(frozen=True)
class Vocab:
    """Characters to ids; 0 is padding and 1 is unknown."""

    chars: tuple[str, ...]
    max_len: int

    def __post_init__(self) -> None:
        if self.max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {self.max_len}")
        if len(set(self.chars)) != len(self.chars) or any(len(c) != 1 for c in self.chars):
            raise VocabError("vocabulary chars must be distinct single characters")

    @classmethod
    def build(cls, names: Iterable[str], max_len: int) -> Vocab:
        """The sorted set of characters seen in ``names`` (training names only)."""
        return cls(tuple(sorted({ch for name in names for ch in name})), max_len)

    @property
    def size(self) -> int:
        """Embedding rows needed: the characters plus PAD and UNK."""
        return len(self.chars) + 2

    @property
    def version(self) -> str:
        """A content hash, so a model and its vocabulary can be checked to match."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def encode(self, names: Sequence[str]) -> np.ndarray:
        """int32 ids of shape (len(names), max_len): left-padded, left-truncated."""
        index = {ch: i + 2 for i, ch in enumerate(self.chars)}
        out = np.full((len(names), self.max_len), PAD_ID, dtype=np.int32)
        for row, raw in enumerate(names):
            name = normalize_name(raw)[-self.max_len :]
            if name:
                out[row, self.max_len - len(name) :] = [index.get(ch, UNK_ID) for ch in name]
        return out

    def to_json(self) -> str:
        """Stable JSON (format version, max_len, chars) saved beside every model."""
        return json.dumps(
            {"format": VOCAB_FORMAT, "max_len": self.max_len, "chars": "".join(self.chars)},
            ensure_ascii=False,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Vocab:
        """Inverse of ``to_json``; rejects unknown format versions."""
        try:
            obj = json.loads(text)
            fmt, max_len, chars = obj["format"], obj["max_len"], obj["chars"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise VocabError(f"malformed vocabulary JSON: {e}") from e
        if fmt != VOCAB_FORMAT:
            raise VocabError(
                f"vocabulary format {fmt} is not supported (this pifed reads {VOCAB_FORMAT}); "
                "re-export the model with this version of pifed"
            )
        return cls(tuple(chars), int(max_len))
