"""Checking the survivor sets the server announces, before a client signs or reveals a share.

Bonawitz et al. (CCS 2017), Fig. 4, ConsistencyCheck and Unmasking: the server tells each
client who survived (``alive``) and who dropped. A client that answered for a peer in both
lists would hand the server both shares of that peer -- its self-mask seed and its masking key
-- and so that peer's update. So a client reveals nothing unless the request partitions exactly
the peers it shared keys with (its U2 plus the peers it accused), names itself alive, and
(actively secure variant) names the very survivor set this client signed, with at least t valid
survivors' signatures on it.

Pure checks on the client's own view of the session, no I/O: every failure raises
:class:`InconsistentUnmaskRequest`, :class:`TooFewSurvivors` or :class:`BadSignature`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set

from .errors import BadSignature, InconsistentUnmaskRequest, TooFewSurvivors
from .identity import VerifyingKey
from .messages import UnmaskRequest
from .session import consistency_statement

__all__ = ["check_alive", "check_consistency", "check_partition"]


def check_alive(
    client_id: int, threshold: int, holders: Set[int], alive: Sequence[int]
) -> tuple[int, ...]:
    """The announced survivor set, checked against this client's own view.

    Why each condition: the set must be canonical (sorted, no repeats) to be signed, hold this
    client (it submitted), name only peers whose shares it holds (``holders``, its U2) and reach
    the threshold ``t``, or unmasking could not complete without revealing too much.
    """
    if list(alive) != sorted(set(alive)):
        raise InconsistentUnmaskRequest("the survivor set must be sorted without repeats")
    if client_id not in alive:
        raise InconsistentUnmaskRequest(
            "the survivor set does not list this client although it submitted; refusing"
        )
    strangers = set(alive) - holders
    if strangers:
        raise InconsistentUnmaskRequest(
            f"the survivor set names {sorted(strangers)}, whose shares this client does not "
            "hold (they never shared keys with it, or it accused them); refusing"
        )
    if len(alive) < threshold:
        raise TooFewSurvivors(
            f"only {len(alive)} survivors, threshold is {threshold}; refusing to unmask"
        )
    return tuple(alive)


def check_partition(
    client_id: int,
    threshold: int,
    holders: Set[int],
    accused: Set[int],
    alive: Sequence[int],
    dropped: Sequence[int],
) -> None:
    """Raise unless ``alive`` and ``dropped`` split this client's session peers cleanly.

    Why: an id in both lists, or twice in one, could make this client reveal both shares of a
    peer; an unknown id or a missing peer means the server tells clients different stories.
    ``holders`` is the client's U2 (whose shares it holds), ``accused`` the senders it accused.
    """
    if len(set(alive)) != len(alive) or len(set(dropped)) != len(dropped):
        raise InconsistentUnmaskRequest(
            "unmasking request lists a client twice; refusing (it could reveal both shares)"
        )
    both = set(alive) & set(dropped)
    if both:
        raise InconsistentUnmaskRequest(
            f"unmasking request lists {sorted(both)} as both alive and dropped; refusing, "
            "answering would hand the server that client's update"
        )
    if client_id in dropped:
        raise InconsistentUnmaskRequest(
            "unmasking request lists this client as dropped although it submitted; refusing"
        )
    known = holders | accused
    unknown = (set(alive) | set(dropped)) - known
    if unknown:
        raise InconsistentUnmaskRequest(
            f"unmasking request names {sorted(unknown)}, which did not share keys with this "
            "client in this session; refusing"
        )
    if set(alive) | set(dropped) != known or client_id not in alive:
        raise InconsistentUnmaskRequest(
            "unmasking request does not partition this session's key-sharing clients into "
            "alive and dropped; refusing"
        )
    check_alive(client_id, threshold, holders, alive)


def check_consistency(
    threshold: int,
    session_id: bytes,
    signed_alive: tuple[int, ...] | None,
    signers: Mapping[int, VerifyingKey],
    request: UnmaskRequest,
) -> None:
    """At least t valid signatures of survivors on the very set this client signed.

    Why: the actively secure variant (Sec. 6) stops a malicious server from showing clients
    different survivor sets; ``signed_alive`` is the set this client signed in ConsistencyCheck
    (None if it signed none) and ``signers`` the device keys from the advertised key list.
    """
    if signed_alive is None or tuple(request.alive) != signed_alive:
        raise InconsistentUnmaskRequest(
            "the unmasking request names another survivor set than the one this client "
            "signed in ConsistencyCheck; refusing (the coordinator tells clients different "
            "stories)"
        )
    statement = consistency_statement(session_id, request.alive)
    ids = [cid for cid, _ in request.signatures]
    if len(set(ids)) != len(ids):
        raise InconsistentUnmaskRequest("the unmasking request repeats a signer; refusing")
    strangers = set(ids) - set(request.alive)
    if strangers:
        raise InconsistentUnmaskRequest(
            f"the unmasking request carries consistency signatures of {sorted(strangers)}, "
            "which are not survivors; refusing"
        )
    # t valid signatures are what the protocol needs; the ones after the t-th are not read
    # (each costs a verification, ~0.3 ms on a Pi-class core).
    for cid, signature in request.signatures[:threshold]:
        try:
            signers[cid].verify(statement, signature)
        except BadSignature as exc:
            raise BadSignature(
                f"the consistency signature of client {cid} does not verify on this "
                "session's survivor set (another set, another session, or forged); refusing"
            ) from exc
    if len(ids) < threshold:
        raise InconsistentUnmaskRequest(
            f"only {len(ids)} survivors signed the survivor set, threshold is "
            f"{threshold}; refusing to unmask"
        )
