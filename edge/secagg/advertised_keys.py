"""Checking the advertised key list a client receives in ShareKeys, before it shares anything.

Bonawitz et al. (CCS 2017), Fig. 4, ShareKeys: every client receives the list of all (id, c_pk,
s_pk) the server collected and must not seal a share to a key it has not checked. The list must
be sorted, name only configured clients, carry this client's own keys as sent, hold valid and
distinct public keys and at least t clients. In the actively secure variant (Sec. 6) each entry
also carries its device's certificate, which must come from the authority THIS client pins
(never one the server sends), and that device's signature over the entry.

A peer's certificate is the same every round while its signatures are not, so the device keys of
certificates already verified are kept in a :class:`CertificateCache` that lives as long as the
client. Pure checks, no I/O; every failure raises a specific :class:`SecAggError`.
"""

from __future__ import annotations

from .config import SecAggConfig
from .errors import (
    BadSignature,
    DuplicatePublicKey,
    MalformedMessage,
    SessionMismatch,
    TooFewSurvivors,
    UnknownClient,
)
from .identity import DeviceCertificate, VerifyingKey, verify_certificate
from .keys import validate_public_key
from .messages import ShareKeysRequest
from .session import advertise_statement

__all__ = ["CertificateCache", "check_advertised_keys", "check_signed_keys"]


class CertificateCache:
    """Device keys certified by one pinned authority, each certificate verified once.

    Why a cache: verifying a certificate costs an Ed25519 check per peer per round, and a
    peer's certificate does not change between rounds; only the (certificate bytes, device id)
    pairs that verified are kept, so a different certificate is always checked afresh.
    """

    def __init__(self, authority: bytes) -> None:
        self._authority = bytes(authority)
        self._verified: dict[tuple[bytes, int], VerifyingKey] = {}

    def device_key(self, cert_bytes: bytes, device_id: int) -> VerifyingKey:
        """The device key ``cert_bytes`` certifies for ``device_id`` under the pinned authority.

        Raises CertificateError (or MalformedMessage for bytes that are no certificate) unless
        the pinned authority issued it for exactly that device id.
        """
        known = self._verified.get((cert_bytes, device_id))
        if known is None:
            cert = DeviceCertificate.from_bytes(cert_bytes)
            verify_certificate(self._authority, cert, device_id=device_id)
            self._verified[(cert_bytes, device_id)] = known = VerifyingKey(cert.public_key)
        return known


def check_signed_keys(
    config_digest: bytes,
    nonce: bytes,
    request: ShareKeysRequest,
    certificates: CertificateCache,
) -> dict[int, VerifyingKey]:
    """Id -> device signing key of every advertised entry (the actively secure variant).

    Every advertised key pair must carry a certificate of the pinned authority for its id and
    that device's signature over it, so a coordinator can neither invent a client nor swap its
    keys; the returned keys later check the survivors' consistency signatures.
    """
    if len(request.signed) != len(request.keys):
        raise BadSignature(
            f"the advertised key list carries {len(request.signed)} signatures for "
            f"{len(request.keys)} clients; the actively secure protocol signs every entry, the "
            "coordinator dropped or invented one"
        )
    signers: dict[int, VerifyingKey] = {}
    for (cid, c_pk, s_pk), (cert_bytes, signature) in zip(
        request.keys, request.signed, strict=True
    ):
        device_key = certificates.device_key(cert_bytes, cid)
        statement = advertise_statement(config_digest, nonce, cid, c_pk, s_pk)
        try:
            device_key.verify(statement, signature)
        except BadSignature as exc:
            raise BadSignature(
                f"the advertised keys of client {cid} are not signed by its device key; the "
                "coordinator forged or altered them"
            ) from exc
        signers[cid] = device_key
    return signers


def check_advertised_keys(
    client_id: int,
    config: SecAggConfig,
    nonce: bytes,
    own_keys: tuple[bytes, bytes],
    request: ShareKeysRequest,
    certificates: CertificateCache | None,
) -> tuple[dict[int, tuple[bytes, bytes]], dict[int, VerifyingKey]]:
    """(id -> (c_pk, s_pk), id -> device signing key) of a ShareKeysRequest that passed.

    Why all of it before sealing: a share sealed to an unchecked key may go to the server
    itself. ``own_keys`` is this client's (c_pk, s_pk) as it advertised them; ``certificates``
    is None in the semi-honest variant, which returns no signing keys.
    """
    if request.config_digest != config.digest:
        raise SessionMismatch("ShareKeysRequest names a different SecAggConfig")
    ids = [cid for cid, _, _ in request.keys]
    if ids != sorted(set(ids)):
        raise MalformedMessage("advertised key list must be sorted by id without repeats")
    for cid in ids:
        if cid not in config.client_ids:
            raise UnknownClient(f"advertised key list names unknown client {cid}")
    keys = {cid: (c_pk, s_pk) for cid, c_pk, s_pk in request.keys}
    if keys.get(client_id) != own_keys:
        raise SessionMismatch(
            "the advertised key list does not carry this client's keys as sent; the list "
            "belongs to another session or was altered"
        )
    signers = (
        {}
        if certificates is None
        else check_signed_keys(config.digest, nonce, request, certificates)
    )
    seen: set[bytes] = set()
    for cid, pair in keys.items():
        for pk in pair:
            validate_public_key(pk)
            if pk in seen:
                raise DuplicatePublicKey(
                    f"public key {pk.hex()[:16]}... is advertised twice (client {cid}); "
                    "every client must generate its own fresh key pairs"
                )
            seen.add(pk)
    if len(keys) < config.t:
        raise TooFewSurvivors(
            f"only {len(keys)} clients advertised keys, threshold is {config.t}; the round "
            "cannot complete"
        )
    return keys, signers
