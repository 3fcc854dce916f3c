"""What the coordinator's store hands out: its row records and its errors.

Kept apart from ``federated.store`` (the transactions) so the records and the error classes that
the coordinator, the service, the command line and the dashboard catch are one short read;
``federated.store`` re-exports every name here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class StoreError(RuntimeError):
    """The database or a blob is missing, corrupt, or of another schema version."""


class MissingStore(StoreError):
    """No database at the path a command that only reads was given."""


class UnknownDevice(StoreError):
    """A token matches no enrolled device."""


class RevokedDevice(StoreError):
    """A token belongs to a revoked device."""


class UncertifiedDevice(StoreError):
    """A device has no certificate from the enrollment authority (its enrollment is not
    finished), or a certificate was refused."""


class UnknownVersion(StoreError):
    """A model version that was never stored."""


@dataclass(frozen=True)
class Device:
    """An enrolled Pi."""

    id: int
    name: str
    created: float
    revoked: float | None
    last_seen: float | None
    public_key: bytes | None = None
    # The authority's certificate (DeviceCertificate.to_bytes), None while enrollment is pending.
    certificate: bytes | None = None

    @property
    def status(self) -> str:
        """revoked, pending (no certificate yet) or active."""
        if self.revoked is not None:
            return "revoked"
        return "active" if self.certificate is not None else "pending"


@dataclass(frozen=True)
class ModelVersion:
    """One stored model: its weights blob, its artifacts (kind -> sha256) and its verdict."""

    version: int
    parent: int | None
    created: float
    round_id: int | None
    weights_sha256: str
    artifacts: dict[str, str]
    status: str
    fleet_metrics: dict[str, Any] | None
    gate_reason: str | None
