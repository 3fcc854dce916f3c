"""Which request a client may answer next (edge/secagg/stage_order.py): message kind, session,
stage order (replays apart from skips) and the deadline of two stages."""

from __future__ import annotations

import pytest

from edge.secagg import AdvertiseKeysRequest, ShareKeysRequest, Stage, StageTimeouts
from edge.secagg.errors import ReplayError, SessionMismatch, StageError, StageTimeout
from edge.secagg.keys import X25519KeyPair
from edge.secagg.randomness import DeterministicRandom
from edge.secagg.session_state import SessionState
from edge.secagg.stage_order import check_deadline, check_session, check_stage, coerce_request

NONCE = b"N" * 32


def test_a_request_is_taken_as_message_or_bytes_of_the_expected_kind_only() -> None:
    request = AdvertiseKeysRequest(NONCE, bytes(32))
    assert coerce_request(request, AdvertiseKeysRequest) is request
    assert coerce_request(request.to_bytes(), AdvertiseKeysRequest) == request
    assert coerce_request(memoryview(request.to_bytes()), AdvertiseKeysRequest) == request
    with pytest.raises(StageError, match="expected ShareKeysRequest, got AdvertiseKeysRequest"):
        coerce_request(request, ShareKeysRequest)


def _session() -> SessionState:
    rng = DeterministicRandom(b"stage-order")
    session = SessionState(NONCE, X25519KeyPair.generate(rng), X25519KeyPair.generate(rng))
    session.session_id = b"S" * 32
    return session


def test_a_request_must_be_for_the_open_session() -> None:
    session = _session()
    assert check_session(session, b"", Stage.SHARE_KEYS, nonce=NONCE) is session
    assert check_session(session, b"", Stage.UNMASKING, session_id=b"S" * 32) is session
    with pytest.raises(SessionMismatch, match="round nonce"):
        check_session(session, b"", Stage.SHARE_KEYS, nonce=b"M" * 32)
    with pytest.raises(SessionMismatch, match="session id"):
        check_session(session, b"", Stage.UNMASKING, session_id=b"T" * 32)
    with pytest.raises(SessionMismatch, match="no session is open"):
        check_session(None, b"F" * 32, Stage.UNMASKING, session_id=b"T" * 32)
    with pytest.raises(ReplayError, match="already answered this session's unmasking"):
        check_session(None, b"F" * 32, Stage.UNMASKING, session_id=b"F" * 32)


@pytest.mark.parametrize(
    ("at", "answered", "stage", "error"),
    [
        (Stage.ADVERTISE_KEYS, Stage.ADVERTISE_KEYS, Stage.SHARE_KEYS, None),
        (Stage.SHARE_KEYS, Stage.ADVERTISE_KEYS, Stage.SHARE_KEYS, ReplayError),
        (Stage.MASKED_INPUT_COLLECTION, Stage.ADVERTISE_KEYS, Stage.SHARE_KEYS, ReplayError),
        (Stage.ADVERTISE_KEYS, Stage.SHARE_KEYS, Stage.MASKED_INPUT_COLLECTION, StageError),
        (None, Stage.ADVERTISE_KEYS, Stage.SHARE_KEYS, StageError),
    ],
)
def test_a_stage_answered_is_a_replay_and_one_skipped_is_out_of_order(
    at: Stage | None, answered: Stage, stage: Stage, error: type[Exception] | None
) -> None:
    if error is None:
        check_stage(at, answered, stage)
    else:
        with pytest.raises(error):
            check_stage(at, answered, stage)


def test_the_deadline_is_both_stages_timeouts_together() -> None:
    timeouts = StageTimeouts(advertise_keys=10.0, share_keys=20.0)
    check_deadline(timeouts, Stage.ADVERTISE_KEYS, Stage.SHARE_KEYS, 30.0)
    with pytest.raises(StageTimeout, match=r"30\.1 s .* \(limit 30\.0 s\)"):
        check_deadline(timeouts, Stage.ADVERTISE_KEYS, Stage.SHARE_KEYS, 30.1)
