"""The coordinator's durable state in one SQLite file (``--db``).

Tables: devices (token hash, signing public key, enrollment certificate), rounds,
secure-aggregation sessions, model versions (with artifact hashes), per-device metrics and
deployments. Model weights and TFLite artifacts are content-addressed
blobs in ``<db>.blobs/``, written (fsync + rename) *before* the row that names them commits, so
a ``kill -9`` at any instant leaves either a complete version or an unreferenced blob, never a
row pointing at nothing. SQLite runs in WAL mode with ``synchronous=FULL``: a committed round or
version survives a crash. Every multi-row change is one transaction.

One job a module: :class:`Store` opens the file and holds the transactions on blobs, model
versions and deployments. Beside it, each read on its own: the tables and their migrations
(``federated.store_schema``), the records and errors it hands out (``federated.store_records``,
re-exported here), the devices and their certificates (``federated.store_devices``) and each
round's rows (``federated.store_rounds``), both offered as Store's own methods, and what must
hold of the files before any transaction (``federated.store_files``).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edge.secagg.identity import DeviceCertificate
from federated.serial_db import SerialConnection
from federated.store_devices import DeviceRegistry
from federated.store_files import (
    StoreFileError,
    create_private_dir,
    create_private_file,
    open_problem,
    secure_store_files,
    writable_side_files,
)
from federated.store_records import (
    Device,
    MissingStore,
    ModelVersion,
    RevokedDevice,
    StoreError,
    UncertifiedDevice,
    UnknownDevice,
    UnknownVersion,
)
from federated.store_rounds import RoundLog
from federated.store_schema import create_schema, upgrade_schema
from model.manifest import write_atomic

__all__ = [
    "DamagedBlob",
    "Device",
    "MissingStore",
    "ModelVersion",
    "RevokedDevice",
    "Store",
    "StoreError",
    "UncertifiedDevice",
    "UnknownDevice",
    "UnknownVersion",
]


# SQLite's INTEGER range: a version number outside it names no row (and sqlite3 would raise).
_MAX_VERSION = 2**63 - 1


class DamagedBlob(StoreError):
    """A version's blob is missing or altered: that version cannot be served or trained from."""

    def __init__(self, version: int, file: str, problem: str) -> None:
        super().__init__(f"version {version}'s {file}: {problem}")
        self.version = version
        self.file = file


class Store:
    """All coordinator state; one instance per process, used from several threads."""

    def __init__(self, path: str | Path, clock: Any = time.time, create: bool = True) -> None:
        """Open (``create``: or create) the database; a wrong or foreign file is refused
        untouched. Read-only commands pass ``create=False``: a mistyped --db is an error, not a
        new empty fleet."""
        self.path = Path(path)
        self.blob_dir = self.path.with_name(self.path.name + ".blobs")
        self._clock = clock
        exists = self.path.is_file() and self.path.stat().st_size > 0
        if not exists and not create:
            raise MissingStore(
                f"no pifed database at {self.path}: check --db (`pifed enroll` or `pifed server` "
                "creates one)"
            )
        try:
            if exists:  # a -shm left read-only would refuse every write of this connection
                writable_side_files(self.path)
            else:
                create_private_file(self.path)
            # One connection serves the gRPC threads and the round thread: serialised
            # (federated.serial_db explains why).
            self._db = SerialConnection(str(self.path))
            self._db.execute("PRAGMA busy_timeout=5000")
            if exists:  # checked before anything is written to it
                upgrade_schema(self._db, self.path)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            if not exists:
                create_schema(self._db)
            create_private_dir(self.blob_dir)
            secure_store_files(self.path, self.blob_dir)
        except StoreFileError as e:
            self._close_quietly()
            raise StoreError(str(e)) from e
        except (sqlite3.DatabaseError, OSError) as e:
            self._close_quietly()
            problem = open_problem(self.path, e)  # its folder or this user's access, not content
            raise StoreError(
                problem
                or f"{self.path} is not a pifed database ({e}); pass another --db or move it away"
            ) from e
        except StoreError:
            self._close_quietly()
            raise
        self._devices = DeviceRegistry(self._db, self.path, clock)
        self._rounds = RoundLog(self._db, clock)

    def _close_quietly(self) -> None:
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()

    @contextmanager
    def transaction(self) -> Iterator[SerialConnection]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception; no other thread's statement
        runs in between."""
        with self._db.transaction() as conn:
            yield conn

    def close(self) -> None:
        """Close the connection (state is already durable)."""
        self._db.close()

    # -- blobs ---------------------------------------------------------------------------------
    def put_blob(self, data: bytes) -> str:
        """Store bytes under their sha256 (idempotent); returns the hash."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.blob_dir / digest
        if not path.exists():
            write_atomic(path, data)
        return digest

    def get_blob(self, digest: str) -> bytes:
        """Bytes of a blob, verified against its name."""
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise StoreError(f"not a sha256 hex digest: {digest[:80]!r}")
        path = self.blob_dir / digest
        if not path.is_file():
            raise StoreError(f"blob {digest[:12]}… is missing from {self.blob_dir}")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise StoreError(f"blob {digest[:12]}… is corrupted on disk")
        return data

    # -- devices (federated.store_devices) ------------------------------------------------------
    def enroll(self, name: str, public_key: bytes | None = None) -> str:
        """Register a device and return its new token (:meth:`DeviceRegistry.enroll`)."""
        return self._devices.enroll(name, public_key)

    def set_public_key(self, name: str, public_key: bytes) -> Device:
        """Give a device without a certificate its Pi's public key (:class:`DeviceRegistry`)."""
        return self._devices.set_public_key(name, public_key)

    def pin_authority(self, public: bytes) -> None:
        """Pin the fleet's enrollment authority key (:meth:`DeviceRegistry.pin_authority`)."""
        self._devices.pin_authority(public)

    def authority(self) -> bytes | None:
        """The pinned enrollment authority public key, or None before the first enrollment."""
        return self._devices.authority()

    def certify(self, cert: DeviceCertificate) -> Device:
        """Store a device's certificate once checked (:meth:`DeviceRegistry.certify`)."""
        return self._devices.certify(cert)

    def device(self, name: str) -> Device:
        """The device of that name, or UnknownDevice."""
        return self._devices.device(name)

    def device_by_id(self, device_id: int) -> Device | None:
        """The device with this id, or None."""
        return self._devices.device_by_id(device_id)

    def certificate(self, device_id: int) -> DeviceCertificate | None:
        """A device's stored certificate (None: pending or unknown)."""
        return self._devices.certificate(device_id)

    def revoke(self, name: str) -> None:
        """Revoke a device: its token and its certificate are refused from now on."""
        self._devices.revoke(name)

    def authenticate(self, token: str) -> Device:
        """The device a token belongs to; raises UnknownDevice, RevokedDevice or
        UncertifiedDevice."""
        return self._devices.authenticate(token)

    def touch(self, device_id: int) -> None:
        """Record that a device was seen now."""
        self._devices.touch(device_id)

    def devices(self) -> list[Device]:
        """All enrolled devices, oldest first."""
        return self._devices.devices()

    # -- model versions ------------------------------------------------------------------------
    def add_version(
        self,
        weights: bytes,
        artifacts: dict[str, bytes],
        status: str,
        parent: int | None = None,
        round_id: int | None = None,
    ) -> int:
        """Store blobs first, then the version row in one transaction; returns the version."""
        weights_sha = self.put_blob(weights)
        arts = {kind: self.put_blob(data) for kind, data in artifacts.items()}
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO model_versions (parent, created, round_id, weights_sha256, "
                "artifacts, status) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    parent,
                    self._clock(),
                    round_id,
                    weights_sha,
                    json.dumps(arts, sort_keys=True),
                    status,
                ),
            )
            assert cur.lastrowid is not None
            return int(cur.lastrowid)

    def version(self, version: int) -> ModelVersion:
        """One version, or UnknownVersion."""
        if not 0 <= version <= _MAX_VERSION:  # no such row, and beyond sqlite3's integers
            raise UnknownVersion(f"model version {version} does not exist (see `pifed models`)")
        row = self._db.execute(
            "SELECT version, parent, created, round_id, weights_sha256, artifacts, status, "
            "fleet_metrics, gate_reason FROM model_versions WHERE version=?",
            (version,),
        ).fetchone()
        if row is None:
            raise UnknownVersion(f"model version {version} does not exist (see `pifed models`)")
        return self._version_from_row(row)

    @staticmethod
    def _version_from_row(row: tuple) -> ModelVersion:
        return ModelVersion(
            version=row[0],
            parent=row[1],
            created=row[2],
            round_id=row[3],
            weights_sha256=row[4],
            artifacts=json.loads(row[5]),
            status=row[6],
            fleet_metrics=json.loads(row[7]) if row[7] else None,
            gate_reason=row[8],
        )

    def versions(self) -> list[ModelVersion]:
        """All versions, oldest first."""
        rows = self._db.execute(
            "SELECT version, parent, created, round_id, weights_sha256, artifacts, status, "
            "fleet_metrics, gate_reason FROM model_versions ORDER BY version"
        ).fetchall()
        return [self._version_from_row(r) for r in rows]

    def latest_version(self) -> ModelVersion | None:
        """The newest version of any status (the next round trains from the newest candidate
        or promoted model: FedAvg continues even while the gate holds deployment back)."""
        row = self._db.execute("SELECT MAX(version) FROM model_versions").fetchone()
        return self.version(row[0]) if row and row[0] is not None else None

    def initial_version(self) -> ModelVersion | None:
        """The fleet's first version (the template model every Pi trains with), or None."""
        row = self._db.execute("SELECT MIN(version) FROM model_versions").fetchone()
        return self.version(row[0]) if row and row[0] is not None else None

    def check_blobs(self, v: ModelVersion) -> None:
        """Every blob of ``v`` (weights, artifacts, manifest) present and intact, or DamagedBlob
        naming the first file that is not: checked before a version is served or rolled back to,
        so a broken one is refused up front rather than mid-round or at the next start."""
        for name, digest in sorted({"weights": v.weights_sha256, **v.artifacts}.items()):
            try:
                self.get_blob(digest)
            except StoreError as e:
                raise DamagedBlob(v.version, name, str(e)) from e

    def references_blob(self, digest: str) -> bool:
        """Whether some version names this blob (its weights, an artifact or a manifest).

        One indexed look-up for weights and one scan of the artifact maps, not a parse of
        every version: devices call this for every file they fetch.
        """
        if (
            not isinstance(digest, str)
            or len(digest) != 64
            or not all(c in "0123456789abcdef" for c in digest)
        ):
            return False
        row = self._db.execute(
            "SELECT 1 FROM model_versions WHERE weights_sha256=? OR instr(artifacts, ?) > 0 "
            "LIMIT 1",
            (digest, f'"{digest}"'),
        ).fetchone()
        return row is not None

    def judge_version(
        self, version: int, promote: bool, reason: str, fleet_metrics: dict[str, Any]
    ) -> None:
        """Record the gate's verdict, and a deployment when it promotes: one transaction."""
        with self.transaction() as db:
            db.execute(
                "UPDATE model_versions SET status=?, fleet_metrics=?, gate_reason=? "
                "WHERE version=?",
                ("promoted" if promote else "rejected", json.dumps(fleet_metrics), reason, version),
            )
            if promote:
                db.execute(
                    "INSERT INTO deployments (version, at, kind, reason) VALUES (?, ?, ?, ?)",
                    (version, self._clock(), "promote", reason),
                )

    def promoted_versions(self) -> list[int]:
        """Versions the gate promoted, oldest first: what a plain rollback may return to."""
        rows = self._db.execute(
            "SELECT version FROM model_versions WHERE status='promoted' ORDER BY version"
        ).fetchall()
        return [int(r[0]) for r in rows]

    def rollback(self, version: int, reason: str, force: bool = False) -> None:
        """Deploy an older version the gate promoted again; ``force`` (the operator's explicit
        word) also allows one the gate never passed, such as the untrained initial model. A
        version missing a blob is refused: the coordinator could not serve it."""
        v = self.version(version)
        if v.status == "candidate":  # a round in flight owns it until the gate judges it
            raise StoreError(f"version {version} is a candidate still being judged")
        if v.status != "promoted" and not force:
            promoted = self.promoted_versions()
            which = (
                f"versions the gate promoted: {', '.join(map(str, promoted))}"
                if promoted
                else "the gate has promoted no version yet"
            )
            raise StoreError(
                f"version {version} is {v.status}, not promoted by the gate; {which} "
                "(--force deploys it anyway)"
            )
        try:  # the next `pifed server` start would refuse a deployed version missing a blob
            self.check_blobs(v)
        except DamagedBlob as e:
            raise StoreError(
                f"{e}; nothing was changed: roll back to an intact version (see `pifed models`), "
                f"or restore {self.blob_dir} from a backup"
            ) from e
        with self.transaction() as db:
            db.execute(
                "INSERT INTO deployments (version, at, kind, reason) VALUES (?, ?, ?, ?)",
                (version, self._clock(), "rollback", reason),
            )

    def deployed(self) -> ModelVersion | None:
        """The version the fleet should run: the latest deployment (promotion or rollback)."""
        row = self._db.execute(
            "SELECT version FROM deployments ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return self.version(row[0]) if row else None

    def deployments(self) -> list[tuple[int, int, float, str, str]]:
        """(id, version, at, kind, reason), oldest first."""
        return self._db.execute(
            "SELECT id, version, at, kind, reason FROM deployments ORDER BY id"
        ).fetchall()

    # -- rounds, sessions and evaluations (federated.store_rounds) -------------------------------
    def abort_unfinished_rounds(self, reason: str) -> list[int]:
        """On start-up: rounds left 'running' by a crash are aborted (their keys are gone)."""
        return self._rounds.abort_unfinished_rounds(reason)

    def start_round(self, base_version: int, participants: list[int]) -> int:
        """A new round row in state 'running'."""
        return self._rounds.start_round(base_version, participants)

    def start_session(self, round_id: int, session_id: str, n: int, threshold: int) -> None:
        """Record a secure-aggregation session bound to its round."""
        self._rounds.start_session(round_id, session_id, n, threshold)

    def finish_session(
        self, session_id: str, ok: bool, dropped: dict[int, str], reason: str = ""
    ) -> None:
        """Close a session as completed or aborted."""
        self._rounds.finish_session(session_id, ok, dropped, reason)

    def finish_round(
        self,
        round_id: int,
        ok: bool,
        reason: str,
        new_version: int | None = None,
        survivors: list[int] | None = None,
        timings: dict[str, float] | None = None,
    ) -> None:
        """Close a round as completed or aborted."""
        self._rounds.finish_round(round_id, ok, reason, new_version, survivors, timings)

    def completed_rounds(self) -> int:
        """How many rounds completed: what a restart's ``--rounds`` counts."""
        return self._rounds.completed_rounds()

    def rounds(self) -> list[dict[str, Any]]:
        """Every round as a dict, oldest first."""
        return self._rounds.rounds()

    def add_device_metrics(
        self, round_id: int, device_id: int, version: int, metrics: dict[str, Any]
    ) -> None:
        """One device's on-device evaluation of one version."""
        self._rounds.add_device_metrics(round_id, device_id, version, metrics)

    def add_fleet_quality(
        self,
        version: int,
        round_id: int,
        languages: tuple[str, ...],
        counts: list[list[int]],
        devices: int,
    ) -> None:
        """A version's fleet quality, a secure-aggregation sum over 2 or more devices
        (:meth:`RoundLog.add_fleet_quality`)."""
        self._rounds.add_fleet_quality(version, round_id, languages, counts, devices)
