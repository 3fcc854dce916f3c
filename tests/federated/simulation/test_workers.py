"""WorkerProcess: the TFF worker_binary we start is gone after stop, at exit and after SIGKILL;
--workers parsing.

Real worker_binary processes, real signals; no TensorFlow import in the test process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from federated.simulation.workers import (
    WorkerAddress,
    WorkerAddressError,
    WorkerError,
    WorkerProcess,
    free_port,
    parse_workers,
    worker_binary_path,
)

ROOT = Path(__file__).resolve().parents[3]


def _alive(pid: int) -> bool:
    """Running and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _accepts(port: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_worker_serves_then_stop_ends_it(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    with WorkerProcess(log_path=log) as w:
        pid = w.pid
        assert pid is not None and _alive(pid)
        assert _accepts(w.port), "worker_binary never listened on its port"
        assert Path(f"/proc/{pid}/exe").resolve() == worker_binary_path().resolve()
        # Its output goes to the log, not to our stdout/stderr (a pipe reader would hang on it).
        assert os.readlink(f"/proc/{pid}/fd/1") == str(log)
        assert os.readlink(f"/proc/{pid}/fd/2") == str(log)
    assert not _alive(pid)
    w.stop()  # idempotent


@pytest.mark.slow
def test_starting_twice_is_an_error() -> None:
    with WorkerProcess() as w, pytest.raises(WorkerError, match="already started"):
        w.start()


def _child(body: str, pdeathsig: bool = True) -> subprocess.Popen[str]:
    code = textwrap.dedent(
        f"""
        import sys, time
        import federated.simulation.workers as sw
        if not {pdeathsig}:
            sw._parent_death_signal = lambda: None
        w = sw.WorkerProcess().start()
        print(w.pid, flush=True)
        """
    ) + textwrap.dedent(body)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )


@pytest.mark.slow
def test_worker_dies_with_a_sigkilled_parent() -> None:
    parent = _child("time.sleep(120)\n")
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    assert _alive(pid)
    parent.send_signal(signal.SIGKILL)  # no finally, no atexit: only the kernel can help
    parent.wait(10)
    assert _wait_gone(pid), f"worker {pid} outlived its SIGKILLed parent"


@pytest.mark.slow
def test_worker_is_stopped_at_interpreter_exit_without_stop() -> None:
    # Without the kernel's parent-death signal, so only the atexit hook can stop it.
    parent = _child("sys.exit(0)\n", pdeathsig=False)
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    assert parent.wait(20) == 0
    assert _wait_gone(pid), f"worker {pid} outlived its parent's normal exit"


@pytest.mark.slow
def test_ctrl_c_ends_the_process_even_if_a_call_never_returns() -> None:
    # The sleep after the caught KeyboardInterrupt stands in for a TFF call that keeps retrying
    # the stopped workers: only the watcher's forced exit can end this process.
    code = textwrap.dedent(
        """
        import os, signal, time
        from federated.simulation.workers import interrupts_stop_workers
        with interrupts_stop_workers(forced_exit_after_s=1.0):
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)
            except KeyboardInterrupt:
                print("caught", flush=True)
            time.sleep(120)
        print("not reached", flush=True)
        """
    )
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert proc.returncode == 130, proc.stderr
    assert proc.stdout.split() == ["caught"]
    assert "a TFF call did not return" in proc.stderr
    assert time.monotonic() - start < 30


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("localhost:8000", (WorkerAddress("localhost", 8000),)),
        ("10.0.0.5:1, 10.0.0.6:2", (WorkerAddress("10.0.0.5", 1), WorkerAddress("10.0.0.6", 2))),
        ("[::1]:9000", (WorkerAddress("::1", 9000),)),
    ],
)
def test_parse_workers(text: str, expected: tuple[WorkerAddress, ...]) -> None:
    assert parse_workers(text) == expected


@pytest.mark.parametrize(
    "text", ["", "localhost", "host:", ":80", "host:abc", "host:70000", "a:1,a:1", "a:1,,b:2"]
)
def test_parse_workers_rejects(text: str) -> None:
    with pytest.raises(WorkerAddressError):
        parse_workers(text)
