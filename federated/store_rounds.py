"""What the store records of each round: the round rows, their secure-aggregation sessions,
and the evaluations made in them (each device's metrics, the fleet's summed quality).

The round runner (``federated.round_runner``) writes these rows at each stage boundary, which is
how ``federated.store_views`` follows a round live. :class:`federated.store.Store` owns the
connection and offers these methods as its own; this class holds them so that a round's
bookkeeping is one read.
"""

from __future__ import annotations

import json
from typing import Any

from federated.serial_db import SerialConnection
from federated.store_records import StoreError


class RoundLog:
    """The rounds, secagg_sessions, device_metrics and fleet_quality tables, over the store's
    one connection."""

    def __init__(self, db: SerialConnection, clock: Any) -> None:
        """Work on the store's connection ``db``, stamping rows with ``clock()``."""
        self._db = db
        self._clock = clock

    def abort_unfinished_rounds(self, reason: str) -> list[int]:
        """On start-up: rounds left 'running' by a crash are aborted (their keys are gone)."""
        with self._db.transaction() as db:
            ids = [r[0] for r in db.execute("SELECT id FROM rounds WHERE status='running'")]
            now = self._clock()
            db.execute(
                "UPDATE rounds SET status='aborted', finished=?, reason=? WHERE status='running'",
                (now, reason),
            )
            db.execute(
                "UPDATE secagg_sessions SET status='aborted', reason=? WHERE status='running'",
                (reason,),
            )
            db.execute(
                "UPDATE model_versions SET status='rejected', gate_reason=? "
                "WHERE status='candidate' AND round_id IN (SELECT id FROM rounds "
                "WHERE status='aborted')",
                (reason,),
            )
        return ids

    def start_round(self, base_version: int, participants: list[int]) -> int:
        """A new round row in state 'running'."""
        with self._db.transaction() as db:
            cur = db.execute(
                "INSERT INTO rounds (started, status, base_version, participants) "
                "VALUES (?, 'running', ?, ?)",
                (self._clock(), base_version, json.dumps(participants)),
            )
            assert cur.lastrowid is not None
            return int(cur.lastrowid)

    def start_session(self, round_id: int, session_id: str, n: int, threshold: int) -> None:
        """Record a secure-aggregation session bound to its round."""
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO secagg_sessions (session_id, round_id, started, status, n, "
                "threshold) VALUES (?, ?, ?, 'running', ?, ?)",
                (session_id, round_id, self._clock(), n, threshold),
            )

    def finish_session(
        self, session_id: str, ok: bool, dropped: dict[int, str], reason: str = ""
    ) -> None:
        """Close a session as completed or aborted."""
        with self._db.transaction() as db:
            db.execute(
                "UPDATE secagg_sessions SET status=?, dropped=?, reason=? WHERE session_id=?",
                ("completed" if ok else "aborted", json.dumps(dropped), reason, session_id),
            )

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
        with self._db.transaction() as db:
            db.execute(
                "UPDATE rounds SET status=?, finished=?, reason=?, new_version=?, survivors=?, "
                "timings=? WHERE id=?",
                (
                    "completed" if ok else "aborted",
                    self._clock(),
                    reason,
                    new_version,
                    json.dumps(survivors),
                    json.dumps(timings or {}),
                    round_id,
                ),
            )

    def completed_rounds(self) -> int:
        """How many rounds completed (gate verdict reached): a restart's ``--rounds`` counts
        these, not the rounds this process ran."""
        row = self._db.execute("SELECT COUNT(*) FROM rounds WHERE status='completed'").fetchone()
        return int(row[0])

    def rounds(self) -> list[dict[str, Any]]:
        """Every round as a dict, oldest first."""
        cols = (
            "id",
            "started",
            "finished",
            "status",
            "base_version",
            "new_version",
            "participants",
            "survivors",
            "reason",
            "timings",
        )
        rows = self._db.execute(f"SELECT {', '.join(cols)} FROM rounds ORDER BY id").fetchall()
        out = []
        for r in rows:
            d = dict(zip(cols, r, strict=True))
            for k in ("participants", "survivors", "timings"):
                d[k] = json.loads(d[k]) if d[k] else None
            out.append(d)
        return out

    def add_device_metrics(
        self, round_id: int, device_id: int, version: int, metrics: dict[str, Any]
    ) -> None:
        """One device's on-device evaluation of one version."""
        with self._db.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO device_metrics VALUES (?, ?, ?, ?)",
                (round_id, device_id, version, json.dumps(metrics, sort_keys=True)),
            )

    def add_fleet_quality(
        self,
        version: int,
        round_id: int,
        languages: tuple[str, ...],
        counts: list[list[int]],
        devices: int,
    ) -> None:
        """A version's fleet quality: the secure-aggregation sum of ``devices`` evaluators'
        confusion counts (``counts[true][predicted]``, in ``languages`` order). Never one
        device's counts: fewer than 2 devices is refused (``StoreError``)."""
        n = len(languages)
        if devices < 2:
            raise StoreError(
                f"a fleet quality summed over {devices} device(s) is one Pi's label mix; only "
                "a secure-aggregation sum of 2 or more devices is stored"
            )
        if len(counts) != n or any(len(row) != n for row in counts):
            raise StoreError(f"fleet quality counts must be {n} x {n} for {n} languages")
        with self._db.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO fleet_quality VALUES (?, ?, ?, ?, ?, ?)",
                (
                    version,
                    round_id,
                    self._clock(),
                    devices,
                    json.dumps(list(languages)),
                    json.dumps([[int(c) for c in row] for row in counts]),
                ),
            )
