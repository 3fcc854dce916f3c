"""A fleet.db this user may not write, or may not open at all, is named as such (exit 2, nothing
changed, the fix) and never called a foreign database to move away.

Real processes as another user: the suite runs as root, whom no file mode stops, so each command
runs as ``nobody`` through ``setpriv`` on files made here and handed to that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.secagg.identity import SigningKey
from federated.authority import init_authority
from federated.store import Store

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _nobody() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' to run as")


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A folder ``nobody`` may enter (pytest's tmp_path is root's alone)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run a command as another user")
    d = Path(tempfile.mkdtemp(prefix="pifed-access-"))
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d)


def _as_nobody(cwd: Path, *argv: str) -> tuple[int, str]:
    user = _nobody()
    cmd = [
        *("setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"),
        *(sys.executable, "-m", "pifed", *argv),
    ]
    env = {**os.environ, "HOME": str(cwd), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def _fleet(folder: Path, owner: pwd.struct_passwd | None) -> Path:
    folder.mkdir(exist_ok=True)
    db = folder / "fleet.db"
    store = Store(db)
    store.enroll("pi-1")
    store.close()
    if owner is not None:
        for p in (folder, *folder.rglob("*")):
            os.chown(p, owner.pw_uid, owner.pw_gid)
    return db


def test_someone_elses_database_is_permission_denied(scratch: Path) -> None:
    db = _fleet(scratch / "fleet", owner=None)  # root's, mode 600
    code, msg = _as_nobody(scratch, "devices", "--db", str(db))
    assert code == 2, msg
    assert f"cannot open {db}: permission denied for this user" in msg
    assert "coordinator's user" in msg and "move it away" not in msg
    assert "Traceback" not in msg


def test_a_folder_this_user_cannot_write_is_named(scratch: Path) -> None:
    (scratch / "roots").mkdir(mode=0o755)
    db = scratch / "roots" / "fleet.db"
    # An enrollment creates a missing fleet file (a --revoke does not): nobody's own authority.
    authority = init_authority(scratch / "authority")
    for f in (authority.key.parent, authority.key, authority.public):
        os.chown(f, _nobody().pw_uid, _nobody().pw_gid)
    key = SigningKey.generate().public.hex()
    code, msg = _as_nobody(
        scratch,
        *("enroll", "--db", str(db), "pi-1", "--public-key", key),
        *(
            "--authority-key",
            str(authority.key),
            "--cert-out",
            str(scratch / "authority/pi-1.cert"),
        ),
    )
    assert code == 2, msg
    assert f"cannot open {db}: this user cannot write its folder {db.parent}" in msg
    assert "Traceback" not in msg and not db.exists()


def test_a_read_only_database_refuses_writes_then_works_once_writable(scratch: Path) -> None:
    db = _fleet(scratch / "fleet", owner=_nobody())
    os.chmod(db, 0o400)  # as its owner would: SQLite then makes its -shm 400 too
    code, msg = _as_nobody(scratch, "enroll", "--db", str(db), "--revoke", "pi-1")
    assert code == 2, msg
    assert f"{db} is read-only for this user" in msg and "nothing changed" in msg
    assert "Traceback" not in msg
    os.chmod(db, 0o600)  # the -shm left behind is still 400
    code, msg = _as_nobody(scratch, "enroll", "--db", str(db), "--revoke", "pi-1")
    assert code == 0, msg
    assert "revoked pi-1" in msg
    store = Store(db)
    assert store.device("pi-1").status == "revoked"
    store.close()
