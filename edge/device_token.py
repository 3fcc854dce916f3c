"""Where a Pi's device token comes from: a private file, or the environment.

The token is the Pi's password to the coordinator. On the command line it shows in ``ps`` and
``/proc/PID/cmdline`` to every local user, and stays in shell history and service files, so the
documented way is a file only its owner can read (``--token-file``, mode 600, as ssh insists for
private keys) or, for a supervisor that injects secrets, the ``PIFED_TOKEN`` variable. ``--token``
still works for tests and one-off runs.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

TOKEN_ENV = "PIFED_TOKEN"


class TokenError(ValueError):
    """No usable token: the message names the problem and the fix."""


def read_token_file(path: str | os.PathLike[str]) -> str:
    """The token in ``path``; refuses a file others can read or write (the fix: chmod 600)."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise TokenError(
            f"token file {p} does not exist; write the token `pifed enroll` printed into it "
            f"(umask 077; echo TOKEN > {p})"
        ) from None
    if not stat.S_ISREG(st.st_mode):
        raise TokenError(f"token file {p} is not a regular file")
    if st.st_mode & 0o077:
        raise TokenError(
            f"token file {p} is readable or writable by other users "
            f"(mode {stat.S_IMODE(st.st_mode):03o}); run `chmod 600 {p}`"
        )
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TokenError(
            f"token file {p} is not text (binary or damaged); write the token `pifed enroll` "
            f"printed into it (umask 077; echo TOKEN > {p})"
        ) from None
    except OSError as e:
        raise TokenError(f"token file {p} cannot be read: {e}") from e
    token = text.strip()
    if not token or any(c.isspace() for c in token):
        raise TokenError(
            f"token file {p} must hold exactly one token (what `pifed enroll` printed)"
        )
    return token


def resolve_token(
    token: str | None, token_file: str | None, env: Mapping[str, str] = os.environ
) -> str:
    """The token from ``--token-file``, else ``--token``, else ``$PIFED_TOKEN``."""
    if token_file:
        return read_token_file(token_file)
    if token:
        return token
    from_env = env.get(TOKEN_ENV, "").strip()
    if from_env:
        return from_env
    raise TokenError(
        f"no device token: pass --token-file FILE (mode 600) or set {TOKEN_ENV}; "
        "`pifed enroll NAME` on the coordinator prints the token once"
    )


def write_token_file(path: str | os.PathLike[str], token: str) -> Path:
    """Write ``token`` to ``path`` readable by its owner only (mode 600), for ``--token-file``."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)  # an existing file keeps its mode through O_CREAT
        f.write(token + "\n")
    return p
