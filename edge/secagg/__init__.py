"""Secure aggregation for pifed clients (Bonawitz et al., "Practical Secure Aggregation for
Privacy-Preserving Machine Learning", CCS 2017).

Everything a Raspberry Pi runs: the crypto wrappers (X25519, HKDF, AES-GCM, AES-CTR PRG, Shamir),
quantisation, the wire messages and the client state machine. It imports only the standard
library, numpy and pycryptodome -- no TensorFlow, no gRPC, nothing from ``federated``. The server
state machine lives in :mod:`federated.secagg_server`. See docs/secure-aggregation.md.
"""

from .client import ClientProtocol
from .config import SecAggConfig, StageTimeouts, default_threshold
from .errors import (
    BadSignature,
    CertificateError,
    ConfigError,
    DecryptionError,
    DTypeError,
    DuplicatePublicKey,
    InconsistentUnmaskRequest,
    InvalidPublicKey,
    MalformedMessage,
    NotEnoughShares,
    QuantisationOverflow,
    ReplayError,
    RoundAborted,
    SecAggError,
    SessionMismatch,
    ShapeError,
    ShareVerificationError,
    StageError,
    StageTimeout,
    TooFewSurvivors,
    UnknownClient,
    ValueOutOfRange,
)
from .messages import (
    AdvertiseKeysReply,
    AdvertiseKeysRequest,
    ClientMessage,
    EncryptedShare,
    MaskedInputReply,
    MaskedInputRequest,
    Message,
    ServerMessage,
    ShareKeysReply,
    ShareKeysRequest,
    UnmaskReply,
    UnmaskRequest,
    decode_message,
)
from .quantize import QuantisationParams
from .randomness import Clock, DeterministicRandom, ManualClock, RandomSource, system_random
from .stages import Stage

__all__ = [
    "AdvertiseKeysReply",
    "AdvertiseKeysRequest",
    "BadSignature",
    "CertificateError",
    "ClientMessage",
    "ClientProtocol",
    "Clock",
    "ConfigError",
    "DTypeError",
    "DecryptionError",
    "DeterministicRandom",
    "DuplicatePublicKey",
    "EncryptedShare",
    "InconsistentUnmaskRequest",
    "InvalidPublicKey",
    "MalformedMessage",
    "ManualClock",
    "MaskedInputReply",
    "MaskedInputRequest",
    "Message",
    "NotEnoughShares",
    "QuantisationOverflow",
    "QuantisationParams",
    "RandomSource",
    "ReplayError",
    "RoundAborted",
    "SecAggConfig",
    "SecAggError",
    "ServerMessage",
    "SessionMismatch",
    "ShapeError",
    "ShareKeysReply",
    "ShareKeysRequest",
    "ShareVerificationError",
    "Stage",
    "StageError",
    "StageTimeout",
    "StageTimeouts",
    "TooFewSurvivors",
    "UnknownClient",
    "UnmaskReply",
    "UnmaskRequest",
    "ValueOutOfRange",
    "decode_message",
    "default_threshold",
    "system_random",
]
