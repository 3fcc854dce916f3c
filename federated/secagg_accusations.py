"""Settling the accusations of a secure-aggregation round: who they exclude, and why.

A client that cannot open or verify a peer's sealed shares masks without that peer and accuses
it in its MaskedInputReply (Bonawitz et al.'s robustness, with share commitments). When the
MaskedInputCollection stage closes, :class:`federated.secagg_server.ServerProtocol` settles the
survivors' accusations here: an accuser of more than ``c`` peers accuses more clients than can
be malicious under the config's assumption, so it is the culprit and its accusations are void;
every other accusation excludes the accused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Verdict", "settle_accusations"]


@dataclass(frozen=True)
class Verdict:
    """What the accusations decide.

    ``excluded`` lists ``(client, reason)`` in the order the exclusions are made (a client may
    appear twice: a void accuser that is also accused ends with the later reason).
    ``accusers`` maps each accused client to the survivors that masked without it; they hold
    none of its shares, so they are left out when its masking key is rebuilt.
    """

    excluded: tuple[tuple[int, str], ...]
    accusers: Mapping[int, set[int]]


def settle_accusations(
    survivors: list[int], accusations: Mapping[int, tuple[int, ...]], c: int
) -> Verdict:
    """Decide whom the survivors' ``accusations`` exclude, given the colluder bound ``c``.

    Why: an accused client's vector must stay out of the sum and its masks with the survivors
    that accepted it must be removed, while a client that accuses too many peers must not be
    able to evict honest ones.
    """
    excluded: list[tuple[int, str]] = []
    liars = {cid for cid in survivors if len(accusations.get(cid, ())) > c}
    for cid in sorted(liars):
        excluded.append(
            (
                cid,
                f"accused {len(accusations[cid])} peers, more than the {c} colluders the "
                "config assumes; its accusations are void",
            )
        )
    accusers: dict[int, set[int]] = {}
    for cid in survivors:
        for accused in accusations.get(cid, ()):
            accusers.setdefault(accused, set()).add(cid)
    for accused, by in sorted(accusers.items()):
        if by - liars:
            excluded.append(
                (accused, f"its sealed shares did not open or verify for clients {sorted(by)}")
            )
    return Verdict(excluded=tuple(excluded), accusers=accusers)
