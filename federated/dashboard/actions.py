"""The operator's actions: rollback, revoke, enroll, on the fleet's store, each logged.

They write through :class:`federated.store.Store` (its own connection, so a transaction here
never interleaves with the round thread's), exactly as ``pifed rollback`` and ``pifed enroll``
do; a rollback then wakes the running coordinator's long-polls (``on_deployed``, the broker's
``push_deployment``) so every connected Pi is sent the version at once rather than at its
next poll.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.device_identity import IdentityError
from edge.secagg import SecAggError
from edge.secagg.identity import DeviceCertificate
from federated.store import Store

log = logging.getLogger("pifed.dashboard")
EventSink = Callable[[dict[str, Any]], None]


class ActionRefused(ValueError):
    """The store refused the action (unknown version or device, a name taken, ...)."""


class FleetActions:
    """Write access for a signed-in operator; thread-safe (one action at a time)."""

    def __init__(
        self,
        db: str | Path,
        on_deployed: Callable[[], None] | None = None,
        on_event: EventSink | None = None,
    ) -> None:
        self._store = Store(db, create=False)
        self._on_deployed = on_deployed or (lambda: None)
        self._emit = on_event or (lambda e: log.info("%s", e))
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the store connection."""
        self._store.close()

    def log(self, event: dict[str, Any]) -> None:
        """Log a dashboard event (sign-ins, refused actions) through the coordinator's log."""
        self._emit(event)

    def _do(self, what: dict[str, Any], fn: Callable[[], Any]) -> Any:
        with self._lock:
            try:
                out = fn()
            # StoreError is a RuntimeError; a certificate the store refuses, a SecAggError
            except (ValueError, RuntimeError, SecAggError, IdentityError) as e:
                self._emit({"event": "dashboard_action", **what, "ok": False, "error": str(e)})
                raise ActionRefused(str(e)) from e
        self._emit({"event": "dashboard_action", **what, "ok": True})
        return out

    def rollback(self, version: int, reason: str) -> None:
        """Deploy a version the gate promoted again; connected Pis are sent it now."""
        self._do(
            {"action": "rollback", "version": version},
            lambda: self._store.rollback(version, reason or "operator rollback (dashboard)"),
        )
        self._on_deployed()

    def revoke(self, name: str) -> None:
        """Refuse a device's token from now on."""
        self._do({"action": "revoke", "device": name}, lambda: self._store.revoke(name))

    def enroll(self, name: str, public_key: bytes) -> tuple[str, str]:
        """Offline enrollment, step 1, for the Pi whose public key is given: its token (returned
        once, stored only hashed; never logged) and the request the enrollment authority signs
        where its key is kept (the coordinator never holds that key). The device is pending
        until :meth:`import_certificate`."""
        from federated.authority import enroll_request

        token, request = self._do(
            {"action": "enroll", "device": name},
            lambda: enroll_request(self._store, name, public_key, None),
        )
        return str(token), request.to_json()

    def import_certificate(self, cert: DeviceCertificate) -> str:
        """Offline enrollment, step 2: store the authority's certificate; the device is active."""
        device = self._do(
            {"action": "import_certificate", "device": cert.device_name},
            lambda: self._store.certify(cert),
        )
        return str(device.name)
