"""Serve the dashboard with uvicorn on a thread beside the gRPC service (or alone).

The TLS rule: on a loopback address plain HTTP is allowed (only this machine can connect);
anywhere else the dashboard serves HTTPS with the fleet's certificate (``server.pem`` /
``server.key`` from ``pifed certs``, the one the Pis already pin) and refuses to start without.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

log = logging.getLogger("pifed.dashboard")


class DashboardAddressError(ValueError):
    """The dashboard address is malformed or needs TLS it was not given."""


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6); a bare port means 127.0.0.1."""
    host, sep, port = address.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", address
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise DashboardAddressError(
            f"--dashboard {address!r}: give HOST:PORT, e.g. 127.0.0.1:8080 (port 0-65535)"
        )
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_files(host: str, certs: Path | None) -> tuple[Path, Path] | None:
    """(certificate, key) to serve with, or None on loopback without certificates."""
    if certs is None:
        if is_loopback(host):
            return None
        raise DashboardAddressError(
            f"the dashboard on {host} would be reachable from other machines in plaintext; "
            "pass --certs DIR (the fleet's server.pem/server.key from `pifed certs`, valid "
            "for that host) or serve it on 127.0.0.1"
        )
    cert, key = certs / "server.pem", certs / "server.key"
    for p in (cert, key):
        if not p.is_file():
            raise DashboardAddressError(f"{p} is missing; create it with `pifed certs`")
    check_tls_pair(cert, key)
    return cert, key


def check_tls_pair(cert: Path, key: Path) -> None:
    """Load ``cert`` and ``key`` as the server will, so a damaged or mismatched pair is refused
    here, naming the fix, rather than in the serving thread's traceback after the start."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # an encrypted key is refused, not prompted for: the server is started unattended
        context.load_cert_chain(cert, key, password=lambda: b"")
    except ssl.SSLError as e:
        raise DashboardAddressError(
            f"{cert} and {key.name} are not a matching PEM pair ({_tls_problem(e)}); "
            "make them with `pifed certs`"
        ) from e
    except OSError as e:
        raise DashboardAddressError(
            f"cannot read {cert} or {key.name} ({e.strerror or e}); check their permissions, "
            "or make them again with `pifed certs`"
        ) from e


def _tls_problem(e: ssl.SSLError) -> str:
    """OpenSSL's reason in words, with its own text (less the C source line) for the record."""
    said = str(e).split(" (_ssl.c:")[0]
    if e.reason in ("KEY_VALUES_MISMATCH", "NO_CERTIFICATE_ASSIGNED"):
        return f"the key is not the certificate's: {said}"
    if e.reason is None or e.reason in ("PEM lib", "NO_START_LINE"):
        return f"a file is not PEM, or the key is encrypted: {said}"
    return said


@dataclass
class DashboardServer:
    """A running dashboard; ``close()`` stops it."""

    server: uvicorn.Server
    thread: threading.Thread
    host: str
    port: int
    tls: bool

    @property
    def url(self) -> str:
        """Where a browser opens it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/"

    @classmethod
    def start(
        cls, app: Starlette, host: str, port: int, tls: tuple[Path, Path] | None
    ) -> DashboardServer:
        """Bind (port 0: any free port), serve on a daemon thread, return once listening."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            sock.close()
            raise OSError(
                f"the dashboard cannot listen on {host}:{port} ({e.strerror}); pick another "
                "--dashboard HOST:PORT"
            ) from e
        bound = sock.getsockname()[1]
        if tls is not None:  # a bad pair fails here, not in the thread uvicorn loads it on
            try:
                check_tls_pair(*tls)
            except DashboardAddressError:
                sock.close()
                raise
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ssl_certfile=str(tls[0]) if tls else None,
            ssl_keyfile=str(tls[1]) if tls else None,
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="dashboard", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"the dashboard did not start on {host}:{bound}")
            time.sleep(0.02)
        out = cls(server, thread, host, bound, tls is not None)
        log.info("dashboard on %s", out.url)
        return out

    def close(self) -> None:
        """Stop serving (open connections get a short grace)."""
        self.server.should_exit = True
        self.thread.join(timeout=5)
