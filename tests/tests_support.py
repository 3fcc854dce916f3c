"""Helpers shared by test modules (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import io
import os
import pwd
import signal
import subprocess
import sys
from contextlib import redirect_stderr


def run_pifed(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `python -m pifed ARGS` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "pifed", *args], capture_output=True, text=True, timeout=timeout
    )


def main_as_another_user(argv: list[str]) -> tuple[int, str]:
    """``main(argv)`` as `nobody` when this is root (root ignores file modes), in a forked
    child; as this user otherwise. Returns its exit code and stderr."""
    from pifed.cli import main

    if os.geteuid() != 0:
        err = io.StringIO()
        with redirect_stderr(err):
            rc = main(argv)
        return rc, err.getvalue()
    nobody = pwd.getpwnam("nobody")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become nobody, run the command, report, never return
        code = 70
        try:
            signal.alarm(60)  # a command that serves instead of refusing: fail, not hang
            os.close(read)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            err = io.StringIO()
            with redirect_stderr(err):
                rc = main(argv)
            os.write(write, f"{rc}\n{err.getvalue()}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        out = f.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    rc, _, err = out.partition("\n")
    return int(rc), err
