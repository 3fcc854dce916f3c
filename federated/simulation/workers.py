"""TFF C++ worker processes for the simulation: our own, shut down on every exit path.

TFF's local C++ context starts ``tensorflow_federated/data/worker_binary`` itself and stops it
only when a manager object is garbage-collected, so at interpreter exit the worker can outlive
Python and keep the parent's stdout/stderr open (``pifed simulate | cat`` never ends). Here the
simulation never lets TFF start a worker: it starts the binary itself (this module) and
installs an execution context that talks to it (``federated.simulation.backend``). Shutdown is
layered so that no single mechanism has to be perfect:

1. ``WorkerProcess.stop`` (SIGINT, then SIGKILL after a grace period) runs from the ``with``
   block's exit, i.e. on success, on an exception and on Ctrl-C (``KeyboardInterrupt``);
2. an ``atexit`` hook stops every worker still running when the interpreter exits;
3. the kernel kills the worker if the Python process dies without running any of that
   (``PR_SET_PDEATHSIG``, Linux), e.g. after SIGKILL;
4. the worker's stdout/stderr go to a log file, never to the parent's pipes, so even a worker
   that somehow survived could not hold a pipeline open.

The registry of running workers (``_live``) is process-wide on purpose: the ``atexit`` hook and
the Ctrl-C watcher (:func:`interrupts_stop_workers`) must reach every worker this process
started, wherever it was started from. Workers given by ``--workers`` (:func:`parse_workers`)
were started by someone else and are never stopped here.

TensorFlow-free: nothing here imports TensorFlow or TFF.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

# Seconds a worker gets to exit after SIGINT before it is killed.
STOP_GRACE_SECONDS = 5.0
_PR_SET_PDEATHSIG = 1


class WorkerError(RuntimeError):
    """A TFF worker could not be found, started or reached."""


class WorkerAddressError(ValueError):
    """A ``--workers`` value is not a comma-separated list of HOST:PORT."""


@dataclass(frozen=True)
class WorkerAddress:
    """Where a ``worker_binary`` listens."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_workers(text: str) -> tuple[WorkerAddress, ...]:
    """Parse ``HOST:PORT,HOST:PORT`` (the ``--workers`` flag); duplicates are an error."""
    out: list[WorkerAddress] = []
    for item in (part.strip() for part in text.split(",")):
        host, sep, port_text = item.rpartition(":")
        if not item or not sep or not host or not port_text.isdigit():
            raise WorkerAddressError(
                f"--workers: {item!r} is not HOST:PORT; give e.g. "
                "--workers 10.0.0.5:8000,10.0.0.6:8000"
            )
        port = int(port_text)
        if not 0 < port < 65536:
            raise WorkerAddressError(f"--workers: port {port} of {item!r} is not in 1..65535")
        addr = WorkerAddress(host.strip("[]"), port)
        if addr in out:
            raise WorkerAddressError(f"--workers: {addr} is listed twice")
        out.append(addr)
    return tuple(out)


def worker_binary_path() -> Path:
    """The ``worker_binary`` shipped inside the installed tensorflow-federated wheel."""
    spec = importlib.util.find_spec("tensorflow_federated")
    if spec is None or not spec.submodule_search_locations:
        raise WorkerError("tensorflow-federated is not installed; install pifed[full]")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "worker_binary"
    if not path.is_file():
        raise WorkerError(f"no TFF worker binary at {path}; reinstall tensorflow-federated")
    return path


def free_port() -> int:
    """An unused TCP port on loopback (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec hook asking the kernel to SIGKILL the child when its parent dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.restype = ctypes.c_int
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong]
    kill = int(signal.SIGKILL)

    def hook() -> None:
        # Runs in the child between fork and exec: no imports, no Python-level locks.
        prctl(_PR_SET_PDEATHSIG, kill)

    return hook


_live: set[WorkerProcess] = set()
_live_lock = threading.Lock()


def stop_all() -> None:
    """Stop every worker this process started (at exit, and on Ctrl-C / SIGTERM)."""
    with _live_lock:
        workers = list(_live)
    for w in workers:
        w.stop()


atexit.register(stop_all)


#: Seconds a Ctrl-C or SIGTERM waits for the run to unwind before the process exits anyway.
FORCED_EXIT_AFTER_S = 20.0


def _forced_exit() -> None:
    with contextlib.suppress(OSError):
        os.write(2, b"pifed: interrupted; a TFF call did not return after the workers stopped\n")
    os._exit(130)


@contextlib.contextmanager
def interrupts_stop_workers(
    forced_exit_after_s: float = FORCED_EXIT_AFTER_S,
) -> Iterator[None]:
    """Make Ctrl-C and SIGTERM stop the workers at once, even mid-computation.

    Python runs signal handlers only between bytecodes, so a SIGINT that arrives while the main
    thread waits inside a TFF C++ call is not acted on until that call returns, which can take
    minutes. The C-level handler does write to the wakeup fd at once: a watcher thread reading
    it stops the workers, the blocked call fails fast, and the KeyboardInterrupt (or the
    SIGTERM handler) then runs as usual. If a call is still wedged ``forced_exit_after_s`` after
    the signal, the process exits with status 130: a Ctrl-C always ends the process. Call from
    the main thread.
    """
    r, w = os.pipe()
    os.set_blocking(w, False)
    previous = signal.set_wakeup_fd(w, warn_on_full_buffer=False)

    def watch() -> None:
        with contextlib.suppress(OSError):
            data = os.read(r, 64)
            if data:
                stop_all()
            if any(b in (signal.SIGINT, signal.SIGTERM) for b in data):
                # A C++ call that keeps retrying the stopped workers never returns to Python, so
                # the KeyboardInterrupt would never run: give it a grace period, then exit hard.
                timer = threading.Timer(forced_exit_after_s, _forced_exit)
                timer.daemon = True
                timer.start()

    watcher = threading.Thread(target=watch, name="pifed-interrupt-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous)
        os.close(w)  # EOF ends the watcher
        watcher.join(5)
        os.close(r)


class WorkerProcess:
    """One ``worker_binary --port=P`` that this process started and will stop.

    Use it as a context manager; ``stop`` is idempotent and also runs at interpreter exit.
    """

    def __init__(
        self,
        port: int | None = None,
        log_path: str | os.PathLike[str] | None = None,
        binary: str | os.PathLike[str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.log_path = Path(log_path) if log_path else None
        self.binary = Path(binary) if binary else worker_binary_path()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def address(self) -> WorkerAddress:
        """Loopback address of this worker."""
        return WorkerAddress("localhost", self.port)

    @property
    def pid(self) -> int | None:
        """The worker's pid while it runs."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> WorkerProcess:
        """Start the binary (its output goes to ``log_path`` or is discarded)."""
        if self._proc is not None:
            raise WorkerError(f"worker on port {self.port} is already started")
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        out: IO[bytes] | int = self._log if self._log is not None else subprocess.DEVNULL
        self._proc = subprocess.Popen(
            [str(self.binary), f"--port={self.port}"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            close_fds=True,
            # Its own session: a terminal's Ctrl-C reaches Python, which then stops the worker
            # in order (the worker does not die under a round in progress).
            start_new_session=True,
            preexec_fn=_parent_death_signal(),
        )
        with _live_lock:
            _live.add(self)
        return self

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """SIGINT, wait up to ``STOP_GRACE_SECONDS``, then SIGKILL; closes the log."""
        proc, self._proc = self._proc, None
        with _live_lock:
            _live.discard(self)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> WorkerProcess:
        return self.start() if self._proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
