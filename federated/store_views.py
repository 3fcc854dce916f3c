"""Read-only views of the coordinator's SQLite file for the dashboard and scripts.

A separate connection opened read-only (``mode=ro``): the views can never write the fleet's
state, so a running coordinator and ``pifed dashboard --db FILE`` on the same file are safe
together (WAL lets readers run beside the writer). Every method returns plain JSON-able dicts,
what the ``/api/`` endpoints send as they are.

The live stage of a round in progress is read from the rows the round runner writes at each
stage boundary (``federated.round_runner``): the round row (waiting is over), the
secure-aggregation session row (training and aggregation), the candidate version row (export
done: evaluation), its metrics rows (devices that evaluated) and its verdict (gate, deploy).
So the rounds page follows a round live from any process that can read the file.
"""

from __future__ import annotations

import json
import pwd
import sqlite3
import time
from pathlib import Path
from typing import Any

from federated.store import MissingStore, StoreError
from federated.store_schema import SCHEMA_VERSION, unsupported_schema

# Stages in the order a round passes them (``federated.round_runner``), for the timeline.
STAGES = ("train+secagg", "export", "evaluate", "gate", "deploy")
# Keys of a finished round's ``timings`` that make up each stage (the rest are detail).
STAGE_TIMING_KEYS = {
    "train+secagg": (
        "secagg_advertise_keys",
        "secagg_share_keys",
        "secagg_masked_input_collection",
        "secagg_unmasking",
    ),
    "export": ("export",),
    "evaluate": ("evaluate",),
    "deploy": ("deploy",),
}


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


def _read_only_folder(path: Path, e: sqlite3.DatabaseError) -> str:
    """What to tell an operator whose user cannot create the WAL index beside the file:
    SQLite reads a WAL database only with ``FILE-shm`` beside it, even for a reader."""
    shm = path.with_name(path.name + "-shm")
    try:
        owner = f" ({pwd.getpwuid(path.stat().st_uid).pw_name}, the file's owner)"
    except (KeyError, OSError):
        owner = ""
    return (
        f"{path} (or its folder {path.parent}) is read-only for this user, and SQLite needs to "
        f"create or write {shm} beside it to read the database ({e}); run this as the "
        f"coordinator's user{owner}, or copy the file (and its -wal, if any) to a writable "
        "folder and pass that --db"
    )


class FleetViews:
    """Queries over one store file; safe to call from several threads (one lock-free
    connection per call would cost more than sqlite's own serialisation here)."""

    def __init__(self, path: str | Path, clock: Any = time.time) -> None:
        """Open ``path`` read-only; a missing file is ``MissingStore`` (a mistyped --db)."""
        self.path = Path(path)
        self._clock = clock
        if not self.path.is_file() or self.path.stat().st_size == 0:
            raise MissingStore(
                f"no pifed database at {self.path}: check --db (`pifed server` creates one)"
            )
        try:
            self._db = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro",
                uri=True,
                check_same_thread=False,
            )
            self._db.execute("PRAGMA busy_timeout=5000")
            row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.DatabaseError as e:
            self._close_quietly()
            if getattr(e, "sqlite_errorname", "").startswith("SQLITE_READONLY"):
                raise StoreError(_read_only_folder(self.path, e)) from e
            raise StoreError(
                f"{self.path} is not a readable pifed database ({e}); pass another --db"
            ) from e
        # Older schemas read as they are (the coordinator migrates them); a newer or unknown
        # one is refused, as the store refuses it.
        if row is None or row[0] not in {str(v) for v in range(1, SCHEMA_VERSION + 1)}:
            self._close_quietly()
            raise unsupported_schema(self.path, row[0] if row else None)

    def _close_quietly(self) -> None:
        if hasattr(self, "_db"):
            self._db.close()

    def close(self) -> None:
        """Close the read-only connection."""
        self._db.close()

    def _rows(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        cur = self._db.cursor()
        cur.row_factory = sqlite3.Row  # type: ignore[assignment]
        return cur.execute(sql, args).fetchall()

    # -- fleet ---------------------------------------------------------------------------------
    def deployed_version(self) -> int | None:
        """The version the fleet should run (latest deployment), or None."""
        rows = self._rows("SELECT version FROM deployments ORDER BY id DESC LIMIT 1")
        return int(rows[0]["version"]) if rows else None

    def devices(self) -> list[dict[str, Any]]:
        """Every enrolled device with its last round's on-device metrics (oldest first)."""
        last = {
            r["device_id"]: r
            for r in self._rows(
                "SELECT m.device_id, m.round_id, m.version, m.metrics FROM device_metrics m "
                "JOIN (SELECT device_id, MAX(round_id) AS r FROM device_metrics "
                "GROUP BY device_id) x ON x.device_id = m.device_id AND x.r = m.round_id"
            )
        }
        out = []
        for d in self._rows(
            "SELECT id, name, created, revoked, last_seen FROM devices ORDER BY id"
        ):
            m = last.get(d["id"])
            out.append(
                {
                    "id": d["id"],
                    "name": d["name"],
                    "created": d["created"],
                    "revoked": d["revoked"],
                    "last_seen": d["last_seen"],
                    "last_metrics": None
                    if m is None
                    else {
                        "round": m["round_id"],
                        "version": m["version"],
                        **json.loads(m["metrics"]),
                    },
                }
            )
        return out

    # -- rounds --------------------------------------------------------------------------------
    def rounds(self, limit: int = 50, before: int | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` rounds (older than round ``before``), newest first, each with
        its sessions, candidate verdict and stage timeline."""
        rows = self._rows(
            "SELECT * FROM rounds WHERE id < ? ORDER BY id DESC LIMIT ?",
            (before if before is not None else 2**62, limit),
        )
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        marks = ",".join("?" * len(ids))
        sessions: dict[int, list[dict[str, Any]]] = {}
        for s in self._rows(
            f"SELECT * FROM secagg_sessions WHERE round_id IN ({marks}) ORDER BY started",
            tuple(ids),
        ):
            sessions.setdefault(s["round_id"], []).append(
                {
                    "session": s["session_id"],
                    "started": s["started"],
                    "status": s["status"],
                    "n": s["n"],
                    "threshold": s["threshold"],
                    "dropped": _loads(s["dropped"]) or {},
                    "reason": s["reason"] or None,
                }
            )
        versions = {
            v["round_id"]: v
            for v in self._rows(
                f"SELECT version, round_id, created, status, gate_reason FROM model_versions "
                f"WHERE round_id IN ({marks})",
                tuple(ids),
            )
        }
        evaluated: dict[int, int] = {
            r["round_id"]: r["n"]
            for r in self._rows(
                f"SELECT round_id, COUNT(*) AS n FROM device_metrics WHERE round_id IN ({marks}) "
                "GROUP BY round_id",
                tuple(ids),
            )
        }
        names = {d["id"]: d["name"] for d in self._rows("SELECT id, name FROM devices")}
        return [
            self._round(r, sessions.get(r["id"], []), versions.get(r["id"]), evaluated, names)
            for r in rows
        ]

    def round(self, round_id: int) -> dict[str, Any] | None:
        """One round as in :meth:`rounds`, or None."""
        found = self.rounds(limit=1, before=round_id + 1)
        return found[0] if found and found[0]["id"] == round_id else None

    def _round(
        self,
        r: sqlite3.Row,
        sessions: list[dict[str, Any]],
        v: sqlite3.Row | None,
        evaluated: dict[int, int],
        names: dict[int, str],
    ) -> dict[str, Any]:
        participants = _loads(r["participants"]) or []
        survivors = _loads(r["survivors"])
        timings = _loads(r["timings"]) or {}
        dropped: dict[str, str] = {}
        for s in sessions:
            dropped.update({str(k): str(stage) for k, stage in s["dropped"].items()})
        if survivors is not None:
            for p in participants:
                if p not in survivors and str(p) not in dropped:
                    dropped[str(p)] = "evaluate"
        verdict = None
        if v is not None and v["status"] in ("promoted", "rejected"):
            verdict = {"promoted": v["status"] == "promoted", "reason": v["gate_reason"]}
        return {
            "id": r["id"],
            "status": r["status"],
            "started": r["started"],
            "finished": r["finished"],
            "base_version": r["base_version"],
            "new_version": r["new_version"]
            if r["new_version"] is not None
            else (v["version"] if v is not None else None),
            "participants": [{"id": p, "name": names.get(p, f"#{p}")} for p in participants],
            "survivors": survivors,
            "dropped": [
                {"id": int(k), "name": names.get(int(k), f"#{k}"), "stage": stage}
                for k, stage in sorted(dropped.items())
            ],
            "sessions": sessions,
            "evaluated": evaluated.get(r["id"], 0),
            "verdict": verdict,
            "reason": r["reason"],
            "timings": timings,
            "stages": self._stages(r, sessions, v, evaluated.get(r["id"], 0), timings),
        }

    def _stages(
        self,
        r: sqlite3.Row,
        sessions: list[dict[str, Any]],
        v: sqlite3.Row | None,
        evaluated: int,
        timings: dict[str, float],
    ) -> list[dict[str, Any]]:
        """The timeline: each stage ``done``, ``running``, ``failed`` or ``pending``, with its
        seconds (from the stored timings once the round is over, else since its start)."""
        now = self._clock()
        if r["status"] != "running":
            out = []
            failed_at = None if r["status"] == "completed" else self._failed_stage(sessions, v)
            for name in STAGES:
                keys = [k for k in STAGE_TIMING_KEYS.get(name, ()) if k in timings]
                secs = sum(timings[k] for k in keys) if keys else None
                if failed_at is not None and STAGES.index(name) > STAGES.index(failed_at):
                    state = "pending"
                elif name == failed_at:
                    state = "failed"
                elif name == "deploy" and v is not None and v["status"] == "rejected":
                    state = "skipped"
                else:
                    state = "done"
                out.append({"stage": name, "state": state, "seconds": secs})
            return out
        # In progress: where the rows written so far put it.
        if v is None and sessions and sessions[-1]["status"] == "completed":
            # The update is aggregated; the candidate row comes once its export is done.
            # (when aggregation ended is not stored: no seconds shown)
            current, since = "export", None
        elif v is None:
            current, since = "train+secagg", (sessions[-1]["started"] if sessions else r["started"])
        elif v["status"] == "candidate":
            current, since = "evaluate", v["created"]
        elif v["status"] == "rejected":
            # Judged and rejected, the round row not yet closed: nothing runs, no deploy.
            return [
                {"stage": n, "state": "skipped" if n == "deploy" else "done", "seconds": None}
                for n in STAGES
            ]
        else:
            current, since = "deploy", v["created"]
        out = []
        passed = True
        for name in STAGES:
            if name == current:
                passed = False
                detail = f"{evaluated} device(s) evaluated" if name == "evaluate" else None
                out.append(
                    {
                        "stage": name,
                        "state": "running",
                        "seconds": None if since is None else max(0.0, now - since),
                        "detail": detail,
                    }
                )
            else:
                out.append(
                    {"stage": name, "state": "done" if passed else "pending", "seconds": None}
                )
        return out

    @staticmethod
    def _failed_stage(sessions: list[dict[str, Any]], v: sqlite3.Row | None) -> str:
        if v is None:
            return (
                "train+secagg"
                if not sessions or sessions[-1]["status"] != "completed"
                else ("export")
            )
        return "evaluate" if v["status"] in ("candidate", "rejected") else "deploy"

    def live_round(self) -> dict[str, Any] | None:
        """The round in progress, or None."""
        rows = self._rows("SELECT id FROM rounds WHERE status='running' ORDER BY id DESC LIMIT 1")
        return self.round(int(rows[0]["id"])) if rows else None

    def round_count(self) -> dict[str, int]:
        """Rounds by status."""
        counts = {"running": 0, "completed": 0, "aborted": 0}
        for r in self._rows("SELECT status, COUNT(*) AS n FROM rounds GROUP BY status"):
            counts[r["status"]] = int(r["n"])
        return counts

    # -- versions ------------------------------------------------------------------------------
    def versions(self) -> list[dict[str, Any]]:
        """Every version (oldest first) with fleet metrics, verdict, lineage and whether it is
        the deployed one; ``deployments`` lists when each was deployed."""
        deployed = self.deployed_version()
        deploys: dict[int, list[dict[str, Any]]] = {}
        for d in self._rows("SELECT version, at, kind, reason FROM deployments ORDER BY id"):
            deploys.setdefault(d["version"], []).append(
                {"at": d["at"], "kind": d["kind"], "reason": d["reason"]}
            )
        return [
            {
                "version": v["version"],
                "parent": v["parent"],
                "round": v["round_id"],
                "created": v["created"],
                "status": v["status"],
                "fleet": _loads(v["fleet_metrics"]),
                "gate_reason": v["gate_reason"],
                "deployed": v["version"] == deployed,
                "deployments": deploys.get(v["version"], []),
                "artifacts": sorted(json.loads(v["artifacts"])),
            }
            for v in self._rows(
                "SELECT version, parent, round_id, created, status, fleet_metrics, gate_reason, "
                "artifacts FROM model_versions ORDER BY version"
            )
        ]

    def promoted_versions(self) -> list[int]:
        """What a rollback may return to."""
        rows = self._rows("SELECT version FROM model_versions WHERE status='promoted' ORDER BY 1")
        return [int(r["version"]) for r in rows]

    # -- quality (issue 22) --------------------------------------------------------------------
    def quality(self, version: int | None = None) -> dict[str, Any]:
        """The fleet quality of ``version`` (default: the deployed one): the secure-aggregation
        sum of its evaluators' confusion counts, per-language recall and the confusions, most
        frequent first. Only fleet totals exist in the store; ``available`` is False when the
        version has none (its quality session did not complete, or the file predates it)."""
        deployed = self.deployed_version()
        chosen = deployed if version is None else version
        out: dict[str, Any] = {
            "version": chosen,
            "deployed": chosen is not None and chosen == deployed,
            "available": False,
            "versions_with_quality": self._quality_versions(),
        }
        rows = self._quality_rows(chosen)
        if not rows:
            return out
        row = rows[0]
        languages = json.loads(row["languages"])
        counts = json.loads(row["counts"])
        support = [sum(r) for r in counts]
        recall = {
            lang: (counts[i][i] / support[i] if support[i] else None)
            for i, lang in enumerate(languages)
        }
        present = [r for r in recall.values() if r is not None]
        total = sum(support)
        confusions = sorted(
            (
                {"true": languages[i], "predicted": languages[j], "count": counts[i][j]}
                for i in range(len(languages))
                for j in range(len(languages))
                if i != j and counts[i][j] > 0
            ),
            key=lambda c: (-c["count"], c["true"], c["predicted"]),
        )
        out.update(
            available=True,
            round=row["round_id"],
            at=row["at"],
            devices=row["devices"],
            languages=languages,
            counts=counts,
            support=dict(zip(languages, support, strict=True)),
            recall=recall,
            names=total,
            accuracy=(sum(counts[i][i] for i in range(len(languages))) / total) if total else None,
            balanced_accuracy=(sum(present) / len(present)) if present else None,
            confusions=confusions,
        )
        return out

    def _quality_rows(self, version: int | None) -> list[sqlite3.Row]:
        if version is None:
            return []
        try:
            return self._rows("SELECT * FROM fleet_quality WHERE version=?", (version,))
        except sqlite3.OperationalError:  # a schema-2 file, read without migrating it
            return []

    def _quality_versions(self) -> list[int]:
        try:
            rows = self._rows("SELECT version FROM fleet_quality ORDER BY version")
        except sqlite3.OperationalError:
            return []
        return [int(r["version"]) for r in rows]
