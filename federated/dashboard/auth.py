"""The operator's sign-in: a token read from a file, server-side sessions, one CSRF token each.

- The token lives in a file only the coordinator's user can read (checked at start); it never
  appears in a URL: the sign-in form posts it, the server compares it in constant time and
  answers with a session cookie (random, ``HttpOnly``, ``SameSite=Strict``, ``Secure`` under
  TLS, ``Path=/``) that names a session held in memory only, so a restart signs everyone out.
- Each session has its own CSRF token, put into every form as a hidden field; an action is
  refused unless the posted field equals the session's token (constant-time), so a page on
  another site cannot post an action even where a browser would send the cookie.
- Sessions expire after ``SESSION_SECONDS`` idle; at most ``MAX_SESSIONS`` are kept.
"""

from __future__ import annotations

import hmac
import secrets
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SESSION_COOKIE = "pifed_session"
SESSION_SECONDS = 8 * 3600
MAX_SESSIONS = 64
MIN_TOKEN_CHARS = 16


class OperatorTokenError(ValueError):
    """The operator token file is missing, too open or too short."""


class NotSignedIn(PermissionError):
    """No valid operator session: sign in with the operator token."""


class BadCsrf(PermissionError):
    """The form's CSRF token is missing or not this session's."""


def read_operator_token(path: str | Path) -> str:
    """The token in ``path`` (one line), refused if others can read the file or it is short."""
    p = Path(path)
    make = f"`umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > {p}`"
    if p.is_dir():
        inside = p / "operator-token"
        raise OperatorTokenError(
            f"operator token {p} is a folder; give the token's file, e.g. make {inside} with "
            + make.replace(f"> {p}`", f"> {inside}`")
        )
    try:
        mode = p.stat().st_mode
        text = p.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise OperatorTokenError(
            f"operator token file {p} is not text (binary or damaged); write a new one with {make}"
        ) from None
    except OSError as e:
        raise OperatorTokenError(f"operator token file {p}: {e}; create it with e.g. {make}") from e
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise OperatorTokenError(
            f"operator token file {p} is readable by other users (mode {stat.S_IMODE(mode):o}); "
            f"fix: chmod 600 {p}"
        )
    if len(text) < MIN_TOKEN_CHARS or any(c.isspace() for c in text):
        raise OperatorTokenError(
            f"operator token in {p} must be one word of at least {MIN_TOKEN_CHARS} characters; "
            "write a longer random one (secrets.token_urlsafe(32))"
        )
    return text


@dataclass
class _Session:
    csrf: str
    last_used: float


class OperatorAuth:
    """Sign-in and CSRF checks for one dashboard; thread-safe."""

    def __init__(self, token: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._token = token.encode()
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}

    def sign_in(self, offered: str) -> tuple[str, str]:
        """A new (session id, CSRF token) for the right operator token; else ``NotSignedIn``."""
        if not hmac.compare_digest(offered.encode(), self._token):
            raise NotSignedIn("wrong operator token")
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._lock:
            self._expire()
            while len(self._sessions) >= MAX_SESSIONS:  # the least recently used goes
                oldest = min(self._sessions, key=lambda k: self._sessions[k].last_used)
                del self._sessions[oldest]
            self._sessions[sid] = _Session(csrf, self._clock())
        return sid, csrf

    def csrf_for(self, sid: str | None) -> str | None:
        """The session's CSRF token (and the session kept alive), or None if not signed in."""
        if not sid:
            return None
        with self._lock:
            self._expire()
            s = self._sessions.get(sid)
            if s is None:
                return None
            s.last_used = self._clock()
            return s.csrf

    def check(self, sid: str | None, posted_csrf: str | None) -> None:
        """Raise ``NotSignedIn`` or ``BadCsrf`` unless this is a signed-in session's own form."""
        csrf = self.csrf_for(sid)
        if csrf is None:
            raise NotSignedIn("sign in with the operator token first")
        if not posted_csrf or not hmac.compare_digest(posted_csrf.encode(), csrf.encode()):
            raise BadCsrf("the form's CSRF token does not match this session; reload the page")

    def sign_out(self, sid: str | None) -> None:
        """Forget the session."""
        with self._lock:
            self._sessions.pop(sid or "", None)

    def _expire(self) -> None:
        now = self._clock()
        for k in [k for k, s in self._sessions.items() if now - s.last_used > SESSION_SECONDS]:
            del self._sessions[k]
