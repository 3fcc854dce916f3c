"""Helpers for fleet tests: real `pifed edge` subprocesses against a real coordinator."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.device_token import write_token_file
from model.dataset import write_names

# A device's private names folder in the data set's layout (the product's own writer).
write_device_names = write_names


class Edge:
    """One `pifed edge` subprocess with its event log."""

    def __init__(
        self,
        name: str,
        port: int,
        token: str,
        data: Path,
        root: Path,
        ca: Path | None,
        seed: int = 0,
        exit_after: str | None = None,
        crash_in: str | None = None,
        hang_in: str | None = None,
    ) -> None:
        self.name = name
        self.log = root / f"{name}.log"
        self.state = root / name / "state"
        tls = ["--ca", str(ca)] if ca else ["--insecure"]
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pifed",
                "edge",
                "--server",
                f"127.0.0.1:{port}",
                "--token-file",
                str(write_token_file(root / name / "token", token)),
                "--data",
                str(data),
                "--state",
                str(self.state),
                *tls,
                "--seed",
                str(seed),
                *(["--fault-exit-after", exit_after] if exit_after else []),
                *(["--fault-crash-in", crash_in] if crash_in else []),
                *(["--fault-hang-in", hang_in] if hang_in else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "wb"),  # noqa: SIM115
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )

    def events(self) -> list[dict[str, Any]]:
        """Every JSON event line the edge wrote so far."""
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(json.JSONDecodeError):
                    out.append(json.loads(line))
        return out

    def wait_for(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 120) -> None:
        """Block until an event matches (or fail with the log)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(pred(e) for e in self.events()):
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)
        raise AssertionError(
            f"{self.name}: no matching event in {timeout} s:\n{self.log.read_text()[-3000:]}"
        )

    def kill(self) -> None:
        """SIGKILL, as a Pi losing power."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
