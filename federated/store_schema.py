"""The store's schema: the tables a new fleet file is made with, and the steps that bring an
older file up to this version (1 -> 2 -> 3), each one transaction.

Kept out of ``federated.store`` (the transactions that read and write the tables) because this is
what a file must be before any of them runs: an existing file is checked and migrated before the
store writes anything else to it, and one of another version is refused untouched.
"""

from __future__ import annotations

from pathlib import Path

from federated.serial_db import SerialConnection
from federated.store_files import check_tables
from federated.store_records import StoreError

SCHEMA_VERSION = 3
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    token_sha256 TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    revoked REAL,
    last_seen REAL,
    public_key TEXT,
    certificate BLOB
);
CREATE UNIQUE INDEX IF NOT EXISTS devices_public_key ON devices(public_key);
CREATE TABLE IF NOT EXISTS model_versions (
    version INTEGER PRIMARY KEY,
    parent INTEGER REFERENCES model_versions(version),
    created REAL NOT NULL,
    round_id INTEGER,
    weights_sha256 TEXT NOT NULL,
    artifacts TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('initial', 'candidate', 'promoted', 'rejected')),
    fleet_metrics TEXT,
    gate_reason TEXT
);
CREATE TABLE IF NOT EXISTS rounds (
    id INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'aborted')),
    base_version INTEGER NOT NULL REFERENCES model_versions(version),
    new_version INTEGER REFERENCES model_versions(version),
    participants TEXT NOT NULL,
    survivors TEXT,
    reason TEXT,
    timings TEXT
);
CREATE TABLE IF NOT EXISTS secagg_sessions (
    session_id TEXT PRIMARY KEY,
    round_id INTEGER NOT NULL REFERENCES rounds(id),
    started REAL NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'aborted')),
    n INTEGER NOT NULL,
    threshold INTEGER NOT NULL,
    dropped TEXT,
    reason TEXT
);
CREATE TABLE IF NOT EXISTS device_metrics (
    round_id INTEGER NOT NULL REFERENCES rounds(id),
    device_id INTEGER NOT NULL REFERENCES devices(id),
    version INTEGER NOT NULL REFERENCES model_versions(version),
    metrics TEXT NOT NULL,
    PRIMARY KEY (round_id, device_id, version)
);
CREATE TABLE IF NOT EXISTS deployments (
    id INTEGER PRIMARY KEY,
    version INTEGER NOT NULL REFERENCES model_versions(version),
    at REAL NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('promote', 'rollback')),
    reason TEXT NOT NULL
);
"""
# Schema 3 (issue 22): a version's fleet quality, the secure-aggregation sum of its evaluators'
# confusion counts; only the fleet total, never one device's counts (devices >= 2).
_FLEET_QUALITY = """
CREATE TABLE IF NOT EXISTS fleet_quality (
    version INTEGER PRIMARY KEY REFERENCES model_versions(version),
    round_id INTEGER NOT NULL REFERENCES rounds(id),
    at REAL NOT NULL,
    devices INTEGER NOT NULL CHECK (devices >= 2),
    languages TEXT NOT NULL,
    counts TEXT NOT NULL
)"""
_TABLES = (
    "meta",
    "devices",
    "model_versions",
    "rounds",
    "secagg_sessions",
    "device_metrics",
    "deployments",
)
# Schema 1 (before device identities) -> 2: the two identity columns, nothing else changes.
_MIGRATE_1_TO_2 = (
    "ALTER TABLE devices ADD COLUMN public_key TEXT",
    "ALTER TABLE devices ADD COLUMN certificate BLOB",
    "CREATE UNIQUE INDEX IF NOT EXISTS devices_public_key ON devices(public_key)",
    "UPDATE meta SET value='2' WHERE key='schema'",
)
# Schema 2 -> 3: the fleet quality table, nothing else changes.
_MIGRATE_2_TO_3 = (_FLEET_QUALITY, "UPDATE meta SET value='3' WHERE key='schema'")


def upgrade_schema(db: SerialConnection, path: Path) -> None:
    """Check an existing file's tables and schema version before anything is written to it, and
    migrate an older fleet up to :data:`SCHEMA_VERSION`: its rounds and versions are kept.

    Raises ``StoreFileError`` (a table is missing: a foreign file) or :class:`StoreError` (a
    schema this pifed cannot open); sqlite errors pass through for the caller to name."""
    check_tables(db, path, _TABLES)
    row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
    if row is not None and row[0] == "1":
        _migrate(db, _MIGRATE_1_TO_2)
        row = ("2",)
    if row is not None and row[0] == "2":
        _migrate(db, _MIGRATE_2_TO_3)
        row = ("3",)
    if row is None or row[0] != str(SCHEMA_VERSION):
        raise unsupported_schema(path, row[0] if row else None)


def unsupported_schema(path: Path, found: str | None) -> StoreError:
    """The one refusal of a schema this pifed cannot read (the store and its read-only views
    say the same)."""
    return StoreError(
        f"{path} has schema {found or 'none'}, this pifed uses {SCHEMA_VERSION}; "
        "use the matching pifed version"
    )


def create_schema(db: SerialConnection) -> None:
    """Make every table of a new, empty fleet file and record its schema version."""
    db.executescript(_SCHEMA + _FLEET_QUALITY + ";")
    db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))


def _migrate(db: SerialConnection, statements: tuple[str, ...]) -> None:
    """Bring an older fleet one schema up (one transaction). 1 -> 2 adds the identity
    columns: a schema-1 fleet's devices have no certificate, so each is refused until
    enrolled again with its Pi's public key. 2 -> 3 adds the fleet quality table."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in statements:
            db.execute(statement)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
