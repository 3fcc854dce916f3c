"""Removing the masks from the secure-aggregation sum (Bonawitz et al., CCS 2017, Fig. 4, round 4).

From ``t`` verified Unmask replies the server rebuilds the self-mask seed ``b_u`` of every
survivor and the masking key ``s_u^SK`` of every client that dropped after dealing its shares,
checks each rebuilt secret against what its owner committed to (the seed commitment, the
advertised public key), and strips the masks from the running sum of masked inputs. It never
rebuilds both secrets of one client, which is what keeps each individual update hidden.

A client excluded on accusation is rebuilt only from the holders that accepted its shares, and
only the masks it shares with the survivors that accepted it are removed. Every reply given
here must have passed :func:`federated.secagg_reply_checks.check_unmask_reply`, so a rebuilt
secret that fails its check means its dealer dealt inconsistent shares.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from edge.secagg.config import SecAggConfig
from edge.secagg.errors import ShareVerificationError, TooFewSurvivors
from edge.secagg.keys import X25519KeyPair
from edge.secagg.masking import add_prg, reduce_mod, unmask_dropped
from edge.secagg.messages import ShareKeysReply, UnmaskReply, UnmaskRequest
from edge.secagg.session import self_mask_commitment
from edge.secagg.shamir import ShareCombiner

__all__ = ["unmask_sum"]


def unmask_sum(
    acc: np.ndarray,
    *,
    config: SecAggConfig,
    session_id: bytes,
    request: UnmaskRequest,
    holders: tuple[int, ...],
    replies: Mapping[int, UnmaskReply],
    dealt: Mapping[int, ShareKeysReply],
    keys: Mapping[int, tuple[bytes, bytes]],
    accusers: Mapping[int, set[int]],
) -> np.ndarray:
    """Strip every mask from the masked sum ``acc`` (in place) and return the ring sum mod 2^k.

    Why: only the sum of the survivors' inputs may come out, so every self mask of
    ``request.alive`` and every pairwise mask of ``request.dropped`` must go, each rebuilt from
    shares the responders revealed. ``holders`` is the ShareKeys key list (it fixes each
    client's Shamir index); ``replies`` are the verified replies, in responder order;
    ``dealt`` and ``keys`` hold each client's ShareKeys reply and advertised (c, s) public
    keys; ``accusers`` maps each accused client to the survivors that masked without it.
    Raises TooFewSurvivors when fewer than ``t`` responders hold a needed share, and
    ShareVerificationError when a rebuilt secret does not match its owner's commitment.
    """
    index = {cid: i + 1 for i, cid in enumerate(holders)}
    # Every reply in hand passed the per-share commitment checks; any t of them rebuild the
    # secrets of an honest dealer. One Lagrange basis serves each group of t.
    responders = list(replies)
    chosen = responders[: config.t]
    combiner = ShareCombiner([index[cid] for cid in chosen])
    for pos, owner in enumerate(request.alive):
        seed = combiner.combine({index[r]: replies[r].seed_shares[pos][1] for r in chosen})
        if self_mask_commitment(session_id, owner, seed) != dealt[owner].commitment:
            raise ShareVerificationError(
                f"the self-mask seed of client {owner} rebuilt from verified shares does not "
                f"match its commitment: client {owner} dealt shares that are not on one "
                "polynomial; revoke its device certificate"
            )
        add_prg(acc, seed, config.bit_width, -1)
    for owner in request.dropped:
        survivors_s = {
            cid: keys[cid][1] for cid in request.alive if cid not in accusers.get(owner, ())
        }
        if not survivors_s:
            continue  # every survivor masked without it: there is no mask to remove
        owner_holders = [r for r in responders if r not in accusers.get(owner, ())]
        if len(owner_holders) < config.t:
            blame = (
                f" (client {owner} sealed shares that did not open for "
                f"{sorted(accusers[owner])}: it is the culprit)"
                if owner in accusers
                else ""
            )
            raise TooFewSurvivors(
                f"only {len(owner_holders)} responders hold a share of client {owner}'s masking "
                f"key, threshold is {config.t}{blame}; the round aborted and revealed nothing"
            )
        picked = owner_holders[: config.t]
        shares = {}
        for r in picked:
            shares[index[r]] = dict(replies[r].key_shares)[owner]
        basis = combiner if picked == chosen else ShareCombiner([index[r] for r in picked])
        rebuilt = X25519KeyPair(basis.combine(shares))
        if rebuilt.public != keys[owner][1]:
            raise ShareVerificationError(
                f"the masking key of dropped client {owner} rebuilt from verified shares "
                f"does not match its advertised public key: client {owner} dealt shares "
                "that are not on one polynomial; revoke its device certificate"
            )
        unmask_dropped(acc, owner, rebuilt, survivors_s, session_id, config.bit_width)
    return reduce_mod(acc, config.bit_width)
