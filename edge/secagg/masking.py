"""Double masking (Bonawitz et al., CCS 2017, Sec. 4): y_u = x_u + PRG(b_u) + sum_v +-PRG(s_uv).

Client ``u`` adds ``PRG(s_uv)`` for every peer ``v > u`` and subtracts it for ``v < u``, so the
pairwise masks of any two clients that both submit cancel in the sum. The self mask ``PRG(b_u)``
stops the server from learning ``x_u`` even after it reconstructs a dropped client's ``s_u^SK``
to remove that client's pairwise masks from the survivors' sum. All arithmetic is in the ring
``Z_{2^k}`` via unsigned numpy wrap-around (``2^k`` divides the word size, so reducing once at the
end is exact).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

import numpy as np

from .keys import X25519KeyPair
from .prg import expand

__all__ = ["add_prg", "masked_input", "pairwise_seed", "reduce_mod", "unmask_dropped"]

_PAIRWISE_INFO = b"pifed-secagg/v1 pairwise-mask"


def pairwise_seed(
    own: X25519KeyPair, own_id: int, peer_id: int, peer_public: bytes, session: bytes
) -> bytes:
    """s_uv: HKDF(X25519(s_u^SK, s_v^PK)) salted with the session, labelled by the sorted pair."""
    lo, hi = sorted((own_id, peer_id))
    return own.agree(peer_public, salt=session, info=_PAIRWISE_INFO + struct.pack("<II", lo, hi))


def add_prg(acc: np.ndarray, seed: bytes, bit_width: int, sign: int) -> None:
    """acc += sign * PRG(seed) in place, wrapping mod 2^wordsize."""
    mask = expand(seed, acc.shape[0], bit_width)
    if sign > 0:
        np.add(acc, mask, out=acc)
    else:
        np.subtract(acc, mask, out=acc)


def reduce_mod(acc: np.ndarray, bit_width: int) -> np.ndarray:
    """Reduce words mod 2^bit_width (a no-op when bit_width is the word size)."""
    if bit_width == acc.dtype.itemsize * 8:
        return acc
    return acc & acc.dtype.type((1 << bit_width) - 1)


def masked_input(
    words: np.ndarray,
    own_id: int,
    own: X25519KeyPair,
    self_seed: bytes,
    peers: Mapping[int, bytes],
    session: bytes,
    bit_width: int,
) -> np.ndarray:
    """y_u = x_u + PRG(b_u) + sum_{v > u} PRG(s_uv) - sum_{v < u} PRG(s_uv) mod 2^k.

    ``peers`` maps every other client that shared keys (U2 without u) to its s public key.
    """
    acc = words.copy()
    add_prg(acc, self_seed, bit_width, +1)
    for peer_id in sorted(peers):
        if peer_id == own_id:
            continue
        seed = pairwise_seed(own, own_id, peer_id, peers[peer_id], session)
        add_prg(acc, seed, bit_width, +1 if own_id < peer_id else -1)
    return reduce_mod(acc, bit_width)


def unmask_dropped(
    acc: np.ndarray,
    dropped_id: int,
    dropped: X25519KeyPair,
    survivors: Mapping[int, bytes],
    session: bytes,
    bit_width: int,
) -> None:
    """Remove from ``acc`` the masks the survivors shared with a dropped client, in place.

    Survivor ``v`` added ``+PRG(s_vd)`` if ``v < d`` and subtracted it otherwise, so the server,
    holding the reconstructed ``s_d^SK``, applies the opposite sign.
    """
    for survivor_id in sorted(survivors):
        seed = pairwise_seed(dropped, dropped_id, survivor_id, survivors[survivor_id], session)
        add_prg(acc, seed, bit_width, -1 if survivor_id < dropped_id else +1)
