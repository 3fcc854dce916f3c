"""The coordinator's operator log: one stream (stderr), a UTC timestamp on every line.

Human lines by default; ``--log-json`` makes every line one JSON object (``ts``, ``level``,
``logger``, ``msg`` and, for a round event, its fields) for log shippers. Round events (the
coordinator's ``on_event`` dicts) are rendered as one short sentence each; library messages
(``pifed.*`` loggers) go through the same handler, so nothing reaches stdout and no line lacks
a time.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import Any, TextIO

LOGGER = "pifed"
_HANDLER_MARK = "_pifed_oplog"
log = logging.getLogger("pifed.server")


class _Human(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        name = record.name.removeprefix("pifed.")
        line = f"{ts}.{int(record.msecs):03d}Z {record.levelname:<7} {name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _Json(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(getattr(record, "event", None) or {})
        return json.dumps(out, sort_keys=True, default=str)


def setup(
    json_lines: bool = False, stream: TextIO | None = None, level: int = logging.INFO
) -> None:
    """Route every ``pifed.*`` logger to one stderr handler (replacing an earlier one), so a
    restart inside one process (tests) does not double lines."""
    root = logging.getLogger(LOGGER)
    for h in list(root.handlers):
        if getattr(h, _HANDLER_MARK, False):
            root.removeHandler(h)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_Json() if json_lines else _Human())
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


def _pct(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, (int, float)) else "-"


def describe(e: dict[str, Any]) -> str:
    """One sentence for a round event (unknown kinds: their fields)."""
    kind = e.get("event")
    r = e.get("round")
    if kind == "round_start":
        return f"round {r}: started with {e['devices']} device(s) from version {e['base_version']}"
    if kind == "stage":
        extra = f" ({e['survivors']} device(s) left)" if "survivors" in e else ""
        return f"round {r}: {e['stage']}{extra}"
    if kind == "aggregated":
        return f"round {r}: aggregated {e['survivors']} update(s), {e['clipped']} clipped"
    if kind == "round_end":
        f = e.get("fleet") or {}
        verdict = "promoted" if e.get("promoted") else "held back"
        return (
            f"round {r}: version {e['version']} {verdict} (fleet accuracy {_pct(f.get('accuracy'))}"
            f", balanced {_pct(f.get('balanced_accuracy'))}; {e['survivors']}/{e['devices']} "
            f"devices, {e.get('timings', {}).get('total', 0):.1f} s): {e['reason']}"
        )
    if kind == "round_failed":
        return f"round {r} failed: {e['reason']}" if r is not None else f"no round: {e['reason']}"
    if kind == "waiting":
        missing = e.get("missing") or []
        names = f"; not connected: {', '.join(missing)}" if missing else ""
        return f"waiting for devices: {e['devices']} of {e.get('needed', '?')} connected{names}"
    if kind == "rounds_plan":
        todo = e["target"] - e["completed"]
        return f"{e['completed']} completed round(s) in the database, target {e['target']}: " + (
            f"running {todo}" if todo > 0 else "nothing to run (--more-rounds K for more)"
        )
    if kind == "restart":
        return f"aborted round(s) {e['aborted_rounds']} left running by a previous coordinator"
    if kind == "listening":
        return f"listening on port {e['port']} ({'TLS' if e.get('tls') else 'PLAINTEXT'})"
    fields = ", ".join(f"{k}={v}" for k, v in sorted(e.items()) if k != "event")
    return f"{kind}: {fields}"


def event(e: dict[str, Any]) -> None:
    """Log one round event (a failed round as a warning)."""
    level = logging.WARNING if e.get("event") == "round_failed" else logging.INFO
    log.log(level, "%s", describe(e), extra={"event": e})


class progress:  # noqa: N801 - used as a context manager, reads as a sentence
    """``with progress("building the starting model"):`` logs the start, a "still ..." line
    every ``every`` seconds while the block runs, and the time it took."""

    def __init__(self, what: str, every: float = 10.0) -> None:
        self.what, self.every = what, every
        self._done = threading.Event()
        self._t0 = 0.0

    def _beat(self) -> None:
        while not self._done.wait(self.every):
            log.info("still %s (%.0f s)", self.what, time.monotonic() - self._t0)

    def __enter__(self) -> progress:
        self._t0 = time.monotonic()
        log.info("%s ...", self.what)
        threading.Thread(target=self._beat, name="progress", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if exc[0] is None:
            log.info("%s: done in %.1f s", self.what, time.monotonic() - self._t0)
