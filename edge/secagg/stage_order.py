"""Which request a client may answer next: message kind, session, stage order and deadline.

Bonawitz et al. (CCS 2017), Fig. 4 runs its rounds in one order, and a client must never answer
a stage twice (a second unmasking answer could reveal both shares of a peer) nor wait forever.
These are the checks a client makes on every request before its stage runs, as Flower's
``check_stage`` does for its secaggplus client; the state machine in :mod:`edge.secagg.client`
decides what a failure does to its session. Pure checks, no I/O, no clock of their own.
"""

from __future__ import annotations

from typing import TypeVar

from .config import StageTimeouts
from .errors import ReplayError, SessionMismatch, StageError, StageTimeout
from .messages import decode_message
from .session_state import SessionState
from .stages import Stage

__all__ = ["check_deadline", "check_session", "check_stage", "coerce_request"]

#: How the stages follow each other, as error messages name it.
_STAGE_ORDER = "AdvertiseKeys, ShareKeys, MaskedInputCollection, (ConsistencyCheck), Unmasking"

_M = TypeVar("_M")


def coerce_request(request: object, kind: type[_M]) -> _M:
    """``request`` (a message or its wire bytes) as a ``kind``; StageError for any other kind.

    Why: a transport may hand over either form, and a message of the wrong kind is a request
    out of stage order, not a malformed one.
    """
    if isinstance(request, bytes | bytearray | memoryview):
        request = decode_message(bytes(request))
    if not isinstance(request, kind):
        raise StageError(
            f"expected {kind.__name__}, got {type(request).__name__}; messages must follow "
            f"the stage order {_STAGE_ORDER}"
        )
    return request


def check_session(
    session: SessionState | None,
    finished: bytes,
    stage: Stage,
    *,
    nonce: bytes | None = None,
    session_id: bytes | None = None,
) -> SessionState:
    """The open ``session``, if a ``stage`` request carrying ``nonce`` / ``session_id`` is for it.

    ``finished`` is the id of the session this client last answered to the end: a request for
    it is a replay (ReplayError), because a second answer could reveal both shares of a peer;
    a request for any other session is a SessionMismatch that leaves the open one alone.
    """
    if session is None and session_id is not None and session_id == finished:
        raise ReplayError(
            "this client already answered this session's unmasking request; a second "
            "answer could reveal both shares of a peer"
        )
    if session is None:
        raise SessionMismatch(
            f"no session is open (got a {stage.name} request); the coordinator must start "
            "a fresh session with AdvertiseKeysRequest"
        )
    if nonce is not None and nonce != session.nonce:
        raise SessionMismatch("request carries another round nonce; it is from another session")
    if session_id is not None and session_id != session.session_id:
        raise SessionMismatch("request carries another session id; it is from another session")
    return session


def check_stage(at: Stage | None, answered: Stage, stage: Stage) -> None:
    """Raise unless a client that last answered ``at`` may answer ``stage`` now.

    ``answered`` is the stage that must come right before ``stage``. A stage already answered
    is a replay (ReplayError); one that skips ahead is out of order (StageError).
    """
    if at != answered:
        if at is not None and at >= stage:
            raise ReplayError(f"this client already answered {stage.name} in this session")
        raise StageError(
            f"got a {stage.name} request but this client is at "
            f"{at.name if at is not None else 'no stage'}; messages follow {_STAGE_ORDER}"
        )


def check_deadline(timeouts: StageTimeouts, answered: Stage, stage: Stage, waited: float) -> None:
    """Raise StageTimeout if ``stage``'s request came ``waited`` seconds after the ``answered``
    reply, longer than the two stages' timeouts together (the server's own deadlines)."""
    limit = timeouts.for_stage(answered) + timeouts.for_stage(stage)
    if waited > limit:
        raise StageTimeout(
            f"{stage.name} request arrived {waited:.1f} s after this client's "
            f"{answered.name} reply (limit {limit:.1f} s); the session was abandoned, the "
            "coordinator must start a fresh one"
        )
