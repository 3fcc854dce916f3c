"""Validation of each client reply the secure-aggregation server collects (Bonawitz et al., Fig. 4).

One check per stage, each given the part of the session it checks against and nothing else: it
raises a :class:`~edge.secagg.errors.SecAggError` that names the sender and what is wrong, and
it changes nothing -- :class:`federated.secagg_server.ServerProtocol` stores a reply only once
its check passed, and drops and names the sender when it raised. The actively secure variant
adds the certificate and signature checks (``authority`` given).

At unmasking every revealed share is checked against the commitment its dealer attached when
dealing it, so a bad share is pinned on the responder that sent it; the reconstruction in
:mod:`federated.secagg_unmask` relies on every reply it gets having passed this check.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from edge.secagg.aead import TAG_SIZE
from edge.secagg.errors import (
    BadSignature,
    CertificateError,
    DTypeError,
    DuplicatePublicKey,
    MalformedMessage,
    SessionMismatch,
    ShapeError,
    ShareVerificationError,
    StageError,
    ValueOutOfRange,
)
from edge.secagg.identity import DeviceCertificate, VerifyingKey, verify_certificate
from edge.secagg.keys import validate_public_key
from edge.secagg.messages import (
    AdvertiseKeysReply,
    ClientMessage,
    ConsistencyCheckReply,
    EncryptedShare,
    MaskedInputReply,
    ShareKeysReply,
    UnmaskReply,
    UnmaskRequest,
    decode_message,
)
from edge.secagg.quantize import QuantisationParams
from edge.secagg.session import (
    SHARE_OF_KEY,
    SHARE_OF_SEED,
    advertise_statement,
    consistency_statement,
    share_commitment,
)
from edge.secagg.share_sealing import SHARE_PLAINTEXT_SIZE
from edge.secagg.stages import Stage

__all__ = [
    "check_advertised_keys",
    "check_consistency",
    "check_masked_input",
    "check_reply_type",
    "check_session",
    "check_share_set",
    "check_unmask_reply",
]

_REPLY_TYPES: dict[Stage, type] = {
    Stage.ADVERTISE_KEYS: AdvertiseKeysReply,
    Stage.SHARE_KEYS: ShareKeysReply,
    Stage.MASKED_INPUT_COLLECTION: MaskedInputReply,
    Stage.CONSISTENCY_CHECK: ConsistencyCheckReply,
    Stage.UNMASKING: UnmaskReply,
}
_CLIENT_TYPES = (
    AdvertiseKeysReply,
    ShareKeysReply,
    MaskedInputReply,
    ConsistencyCheckReply,
    UnmaskReply,
)


def check_reply_type(
    message: ClientMessage | bytes | bytearray | memoryview, stage: Stage
) -> ClientMessage:
    """Decode ``message`` and return it if it is the reply ``stage`` collects.

    Why: a stage reads only its own reply type, so an out-of-order or server-side message is
    rejected before anything looks at its content.
    """
    decoded = (
        decode_message(bytes(message))
        if isinstance(message, bytes | bytearray | memoryview)
        else message
    )
    expected_type = _REPLY_TYPES[stage]
    if not isinstance(decoded, _CLIENT_TYPES):
        raise StageError(f"got {type(decoded).__name__}, which clients never send")
    msg: ClientMessage = decoded
    if type(msg) is not expected_type:
        raise StageError(
            f"got {type(msg).__name__} while collecting {expected_type.__name__} "
            f"({stage.name}); out-of-order messages are rejected"
        )
    return msg


def check_session(msg: ClientMessage, nonce: bytes, session_id: bytes) -> None:
    """Raise SessionMismatch unless ``msg`` belongs to this session.

    Why: a stale or replayed reply of an earlier session must not count in this one. Before the
    session id exists (AdvertiseKeys) the round nonce binds the reply instead.
    """
    if isinstance(msg, AdvertiseKeysReply):
        if msg.nonce != nonce:
            raise SessionMismatch(
                f"client {msg.client_id} answered another round nonce; stale or replayed "
                "from an earlier session"
            )
    elif msg.session_id != session_id:
        raise SessionMismatch(
            f"client {msg.client_id} sent a message of another session; stale or replayed"
        )


def check_advertised_keys(
    msg: AdvertiseKeysReply,
    digest: bytes,
    nonce: bytes,
    keys: Mapping[int, tuple[bytes, bytes]],
    authority: bytes | None,
) -> VerifyingKey | None:
    """Check an AdvertiseKeys reply; return the sender's device key in the active variant.

    Why: low-order, non-canonical or copied keys would let a client weaken or impersonate a
    peer's masks, and (``authority`` given) only a device the enrollment authority certified
    may take part. ``keys`` are the keys already advertised in this session.
    """
    validate_public_key(msg.c_public)
    validate_public_key(msg.s_public)
    if msg.c_public == msg.s_public:
        raise DuplicatePublicKey(
            f"client {msg.client_id} advertised the same key as c and s; it must generate "
            "two independent key pairs"
        )
    for other, (c_pk, s_pk) in keys.items():
        if {msg.c_public, msg.s_public} & {c_pk, s_pk}:
            raise DuplicatePublicKey(
                f"client {msg.client_id} advertised a public key already advertised by "
                f"client {other}; rejected (copied keys could impersonate a peer)"
            )
    if authority is None:
        if msg.certificate or msg.signature:
            raise CertificateError(
                f"client {msg.client_id} sent a certificate in a semi-honest session; the "
                "coordinator and the device run different variants (SecAggConfig.active)"
            )
        return None
    cert = DeviceCertificate.from_bytes(msg.certificate)
    verify_certificate(authority, cert, device_id=msg.client_id)
    statement = advertise_statement(digest, nonce, msg.client_id, msg.c_public, msg.s_public)
    device_key = VerifyingKey(cert.public_key)
    _verify(
        device_key,
        statement,
        msg.signature,
        f"client {msg.client_id}'s advertised keys are not signed by its device key",
    )
    return device_key


def check_share_set(msg: ShareKeysReply, holders: tuple[int, ...]) -> None:
    """Check a ShareKeys reply deals one well-formed sealed share set to each other holder.

    Why: the server relays each set unopened, so a missing, repeated or truncated one must be
    caught here, where its dealer is known, not later at its recipient.
    """
    recipients = [item.peer for item in msg.shares]
    wanted = [cid for cid in holders if cid != msg.client_id]
    if sorted(recipients) != wanted or len(set(recipients)) != len(recipients):
        raise MalformedMessage(
            f"client {msg.client_id} must send exactly one share set to each other member of "
            "the advertised key list"
        )
    for item in msg.shares:
        if len(item.ciphertext) != SHARE_PLAINTEXT_SIZE + TAG_SIZE:
            raise MalformedMessage(
                f"sealed share from {msg.client_id} to {item.peer} has "
                f"{len(item.ciphertext)} bytes, expected {SHARE_PLAINTEXT_SIZE + TAG_SIZE}"
            )


def check_masked_input(
    msg: MaskedInputReply, quant: QuantisationParams, peers: set[int]
) -> np.ndarray:
    """Check a masked input and its accusations; return the vector in the session's dtype.

    Why: one word of the wrong width or range would corrupt the whole sum with nobody to
    blame once it is added in. ``peers`` are the clients whose shares were relayed to the
    sender: only they can be accused.
    """
    vec = msg.vector
    if vec.dtype.kind != "u" or vec.dtype.itemsize != quant.dtype.itemsize:
        raise DTypeError(
            f"client {msg.client_id} sent {vec.dtype} words; this session uses "
            f"{quant.dtype} (bit width {quant.bit_width})"
        )
    if vec.shape != (quant.word_count,):
        raise ShapeError(
            f"client {msg.client_id} sent {vec.shape} words, expected ({quant.word_count},); "
            "its update does not match config.vector_lengths"
        )
    if quant.bit_width < vec.dtype.itemsize * 8 and int(vec.max()) >> quant.bit_width:
        raise ValueOutOfRange(
            f"client {msg.client_id} sent a word >= 2^{quant.bit_width}; masked words must "
            "be reduced mod 2^bit_width"
        )
    if list(msg.accused) != sorted(set(msg.accused)) or not set(msg.accused) <= peers:
        raise MalformedMessage(
            f"client {msg.client_id} accused {list(msg.accused)}; an accusation lists, "
            "sorted and once each, peers whose shares were relayed to it"
        )
    return vec.astype(quant.dtype, copy=False)


def check_consistency(
    msg: ConsistencyCheckReply, signer: VerifyingKey, session_id: bytes, alive: tuple[int, ...]
) -> None:
    """Raise BadSignature unless the sender signed this session's survivor set.

    Why: the signatures are what lets each client check that the server told every survivor
    the same set before anyone reveals a share.
    """
    _verify(
        signer,
        consistency_statement(session_id, alive),
        msg.signature,
        f"client {msg.client_id}'s consistency signature does not verify on the survivor set",
    )


def check_unmask_reply(
    msg: UnmaskReply,
    request: UnmaskRequest,
    accusers: Mapping[int, set[int]],
    dealt: Mapping[int, ShareKeysReply],
    session_id: bytes,
) -> None:
    """Check an Unmask reply holds the asked-for shares, each the one its dealer dealt.

    Why: a share that does not match its dealer's commitment is pinned on the responder that
    revealed it, so the round can go on without that reply instead of rebuilding a wrong
    secret. ``accusers`` maps each accused client to the survivors that masked without it
    (they hold none of its shares); ``dealt`` holds every dealer's ShareKeys reply.
    """
    cid = msg.client_id
    want_keys = tuple(owner for owner in request.dropped if cid not in accusers.get(owner, ()))
    if (
        tuple(owner for owner, _ in msg.seed_shares) != request.alive
        or tuple(owner for owner, _ in msg.key_shares) != want_keys
    ):
        raise MalformedMessage(
            f"client {cid} did not return exactly one share per listed client (none for a "
            "peer it accused), in the order of the unmasking request"
        )
    for kind, group in ((SHARE_OF_SEED, msg.seed_shares), (SHARE_OF_KEY, msg.key_shares)):
        for owner, share in group:
            if owner == cid:
                continue  # its own share: checked by the secret's commitment / public key
            item = _dealt(dealt[owner], cid)
            expected = item.seed_commitment if kind == SHARE_OF_SEED else item.key_commitment
            if share_commitment(session_id, owner, cid, kind, share) != expected:
                raise ShareVerificationError(
                    f"client {cid} revealed a share of client {owner}'s "
                    f"{'self-mask seed' if kind == SHARE_OF_SEED else 'masking key'} that "
                    "is not the one dealt to it (its commitment does not match); its reply "
                    "is discarded and the round goes on with the other responders"
                )


def _dealt(reply: ShareKeysReply, holder: int) -> EncryptedShare:
    for item in reply.shares:
        if item.peer == holder:
            return item
    raise MalformedMessage(f"client {reply.client_id} dealt no share to {holder}")


def _verify(key: VerifyingKey, statement: bytes, signature: bytes, problem: str) -> None:
    try:
        key.verify(statement, signature)
    except BadSignature as exc:
        raise BadSignature(problem) from exc
