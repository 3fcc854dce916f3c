"""A Pi whose TLS handshake fails says why, once, with the fix, and keeps retrying quietly.

Real certificates from ``federated.certs`` and a real gRPC TLS server on 127.0.0.1; the Pi is
``diagnose_tls`` in process and a real ``pifed edge`` process whose log is read.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from fleet_harness import Edge, enroll_pis

from edge.transport import ChannelConfig, diagnose_tls, might_be_tls
from federated.certs import CertPaths, make_certs

pytestmark = pytest.mark.slow

# case -> (what the server's certificates are, the cause named, the fix named)
CASES = {
    "wrong_ca": ("unknown_ca", "copy the coordinator's ca.pem from `pifed certs` again"),
    "wrong_host": ("wrong_host", "dial the host name the certificate was issued for"),
    "expired": ("expired", "re-issue the certificates with `pifed certs`"),
}


def server_certs(case: str, root: Path) -> CertPaths:
    if case == "wrong_host":
        return make_certs(root / case, hosts=("coordinator.example",))
    if case == "expired":
        return make_certs(
            root / case, not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=10), days=1
        )
    return make_certs(root / case)


@contextlib.contextmanager
def _serving(certs: CertPaths) -> Iterator[int]:
    """A gRPC TLS server on loopback with these certificates (no services); its port."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    creds = grpc.ssl_server_credentials(
        [(certs.server_key.read_bytes(), certs.server_cert.read_bytes())]
    )
    port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()
    try:
        yield port
    finally:
        server.stop(0)


@pytest.fixture
def tls_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A gRPC server with the case's certificates; yields its port and the CA the Pi pins."""
    case = request.param
    certs = server_certs(case, tmp_path)
    pinned = make_certs(tmp_path / "other").ca_cert if case == "wrong_ca" else certs.ca_cert
    with _serving(certs) as port:
        yield port, pinned


@pytest.mark.parametrize("tls_server", list(CASES), indirect=True)
def test_diagnose_tls_names_the_cause(
    tls_server: tuple[int, Path], request: pytest.FixtureRequest
) -> None:
    port, ca = tls_server
    cause, fix = CASES[request.node.callspec.params["tls_server"]]
    problem = diagnose_tls(ChannelConfig(f"127.0.0.1:{port}", "token", ca))
    assert problem is not None and problem.cause == cause and fix in problem.message


def test_a_good_handshake_or_no_server_is_not_a_tls_problem(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    with _serving(certs) as port:
        assert diagnose_tls(ChannelConfig(f"127.0.0.1:{port}", "t", certs.ca_cert)) is None
    assert diagnose_tls(ChannelConfig(f"127.0.0.1:{port}", "t", certs.ca_cert)) is None


def test_a_refused_connection_is_not_probed() -> None:
    refused = (
        "Poll: UNAVAILABLE: failed to connect to all addresses; last error: UNKNOWN: "
        "ipv4:127.0.0.1:1: Failed to connect to remote host: connect: Connection refused (111)"
    )
    handshake = (
        "Poll: UNAVAILABLE: failed to connect to all addresses; last error: UNKNOWN: "
        "ipv4:127.0.0.1:45197: Peer name 127.0.0.1 is not in peer certificate"
    )
    assert not might_be_tls(refused) and might_be_tls(handshake)


def test_an_unreadable_ca_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate")
    problem = diagnose_tls(ChannelConfig("127.0.0.1:1", "t", tmp_path / "ca.pem"))
    assert problem is not None and problem.cause == "bad_ca_file" and "ca.pem" in problem.message


@pytest.mark.parametrize("tls_server", list(CASES), indirect=True)
def test_pifed_edge_logs_the_tls_cause_once_and_keeps_retrying(
    tls_server: tuple[int, Path],
    request: pytest.FixtureRequest,
    tmp_path: Path,
    data_dir: Path,
) -> None:
    port, ca = tls_server
    cause, fix = CASES[request.node.callspec.params["tls_server"]]
    (token,), _ = enroll_pis(tmp_path, ["pi"])  # an enrolled identity: edges need one
    edge = Edge("pi", port, token, data_dir, tmp_path, ca)
    try:
        edge.wait_for(lambda e: e.get("event") == "tls_error", timeout=60)
        # Let it retry a few more times (backoff 0.5, 1, 2, 4 s ...): nothing new is said.
        edge.wait_for(lambda e: e.get("event") == "reconnect" and e.get("wait", 0) > 2, timeout=60)
        time.sleep(1)
    finally:
        edge.stop()
    lines = edge.log.read_text(errors="replace").splitlines()
    told = [ln for ln in lines if "TLS" in ln]
    assert len(told) == 1, lines
    assert f'"cause": "{cause}"' in told[0] and fix in told[0]
    assert sum('"event": "reconnect"' in ln for ln in lines) >= 3  # it kept retrying
    assert not [ln for ln in lines if "Handshake failed" in ln or not ln.startswith("{")], lines
