"""Serve the dashboard with uvicorn on a thread beside the gRPC service (or alone).

The TLS rule: on a loopback address plain HTTP is allowed (only this machine can connect);
anywhere else the dashboard serves HTTPS with the fleet's certificate (``server.pem`` /
``server.key`` from ``pifed certs``, the one the Pis already pin) and refuses to start without.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
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
    return cert, key


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
