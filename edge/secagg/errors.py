"""Exceptions of the secure-aggregation protocol (Bonawitz et al., CCS 2017).

Following pyca/cryptography, every check that must not be ignored raises; nothing here returns
``False``. There is one class per failure kind, all under :class:`SecAggError`, so a transport can
catch the base class, log ``str(exc)`` (which names the problem and the fix) and carry on.
"""

from __future__ import annotations

__all__ = [
    "BadSignature",
    "CertificateError",
    "ConfigError",
    "DTypeError",
    "DecryptionError",
    "DuplicatePublicKey",
    "InconsistentUnmaskRequest",
    "InvalidPublicKey",
    "MalformedMessage",
    "NotEnoughShares",
    "QuantisationOverflow",
    "ReplayError",
    "RoundAborted",
    "SecAggError",
    "SessionMismatch",
    "ShapeError",
    "ShareVerificationError",
    "StageError",
    "StageTimeout",
    "TooFewSurvivors",
    "UnknownClient",
    "ValueOutOfRange",
]


class SecAggError(Exception):
    """Base class of every secure-aggregation failure."""


class MalformedMessage(SecAggError, ValueError):
    """Bytes or fields of a message do not follow the wire format."""


class ConfigError(SecAggError, ValueError):
    """A serialised SecAggConfig (see ``SecAggConfig.from_dict``) lacks a field or has a bad one."""


class DecryptionError(SecAggError):
    """An AES-GCM ciphertext failed authentication (tampered, wrong key or wrong binding)."""


class InvalidPublicKey(SecAggError):
    """A public key is not a canonical, full-order X25519 point."""


class DuplicatePublicKey(SecAggError):
    """Two advertised public keys are equal (copied key or reused key pair)."""


class ReplayError(SecAggError):
    """A message was already accepted (or a round nonce already used) in this session."""


class StageError(SecAggError):
    """A message arrived for a stage other than the current one."""


class SessionMismatch(SecAggError):
    """A message belongs to another session (other nonce, keys or configuration)."""


class UnknownClient(SecAggError):
    """A client id is not part of the configured client set."""


class ShareVerificationError(SecAggError):
    """A reconstructed secret does not match what its owner committed to."""


class NotEnoughShares(SecAggError):
    """Fewer shares than the threshold were given for a reconstruction."""


class InconsistentUnmaskRequest(SecAggError):
    """An unmasking request would reveal more than the protocol allows; the client refuses."""


class ShapeError(SecAggError, ValueError):
    """A vector has the wrong count, dimension or length."""


class DTypeError(SecAggError, TypeError):
    """A vector has the wrong element type."""


class ValueOutOfRange(SecAggError, ValueError):
    """A value is not finite, or a masked word does not fit the configured bit width."""


class QuantisationOverflow(SecAggError, ValueError):
    """Quantisation parameters would let the sum wrap around the modulus."""


class StageTimeout(SecAggError):
    """A stage deadline passed."""


class RoundAborted(SecAggError):
    """The round was aborted; start a fresh session."""


class TooFewSurvivors(RoundAborted):
    """Fewer clients than the threshold are left, so the round aborts and reveals nothing."""


class BadSignature(SecAggError):
    """An Ed25519 signature does not verify under the key it claims."""


class CertificateError(SecAggError):
    """A device certificate is malformed, names another device or is not the authority's."""
