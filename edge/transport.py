"""The Pi's gRPC channel to the coordinator: TLS with a pinned CA, bearer token, byte frames.

Three unary methods under ``/pifed.Fleet/``: ``Poll`` (long-poll for the next task), ``Submit``
(answer a task) and ``Fetch`` (download a content-addressed blob: weights, a .tflite, a
manifest). Messages are ``edge.wire`` frames passed as raw bytes, so no generated code is
needed. Plaintext is possible only when asked for explicitly (``insecure=True``).

When a TLS handshake fails gRPC reports only ``UNAVAILABLE`` (and its C core logs a line per
attempt); ``diagnose_tls`` repeats the handshake with Python's ``ssl`` and the same pinned CA
and host name to name the cause and its fix. gRPC's own logging defaults to errors only
(``GRPC_VERBOSITY``, when not set), so a Pi's log is not flooded while it retries.
"""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # before grpc starts: no per-retry info lines
import grpc

from edge.wire import Frame, decode, encode

SERVICE = "pifed.Fleet"
METHODS = ("Poll", "Submit", "Fetch", "Heartbeat")
# Headroom over the largest payload (weights or an artifact) for the frame header.
FRAME_OVERHEAD = 1 << 20


class TransportError(RuntimeError):
    """The coordinator is unreachable or refused a call; ``code`` is the gRPC status name."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class BlobMismatch(TransportError):
    """A fetched blob's bytes do not hash to the digest that was asked for."""


def channel_options(max_bytes: int) -> list[tuple[str, Any]]:
    """Message limits sized from the model, plus keepalive for long polls through NAT."""
    return [
        ("grpc.max_send_message_length", max_bytes),
        ("grpc.max_receive_message_length", max_bytes),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_permit_without_calls", 1),
    ]


@dataclass(frozen=True)
class ChannelConfig:
    """How a Pi reaches its coordinator."""

    target: str
    token: str
    ca_file: Path | None
    insecure: bool = False
    max_bytes: int = 64 << 20

    def __post_init__(self) -> None:
        if not self.insecure and self.ca_file is None:
            raise ValueError(
                "TLS needs the coordinator's CA: pass --ca ca.pem (from `pifed certs`), "
                "or --insecure for a plaintext test setup"
            )
        if not self.token:
            raise ValueError("a device token is required; get one with `pifed enroll NAME`")


class FleetChannel:
    """A connected stub; methods raise TransportError with the gRPC code on failure."""

    def __init__(self, cfg: ChannelConfig) -> None:
        self.cfg = cfg
        opts = channel_options(cfg.max_bytes)
        if cfg.insecure:
            self._channel = grpc.insecure_channel(cfg.target, options=opts)
        else:
            assert cfg.ca_file is not None
            creds = grpc.ssl_channel_credentials(root_certificates=cfg.ca_file.read_bytes())
            self._channel = grpc.secure_channel(cfg.target, creds, options=opts)
        self._calls = {m: self._channel.unary_unary(f"/{SERVICE}/{m}") for m in METHODS}
        self._meta = (("authorization", f"Bearer {cfg.token}"),)

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def _call(self, method: str, header: dict[str, Any], payload: bytes, timeout: float) -> Frame:
        try:
            raw = self._calls[method](encode(header, payload), timeout=timeout, metadata=self._meta)
        except grpc.RpcError as e:
            code = e.code().name if hasattr(e, "code") and e.code() else "UNKNOWN"
            details = e.details() if hasattr(e, "details") else str(e)
            raise TransportError(f"{method}: {code}: {details}", code) from e
        return decode(raw, self.cfg.max_bytes)

    def poll(self, header: dict[str, Any], wait: float) -> Frame:
        """Ask for the next task; the coordinator holds the call up to ``wait`` seconds."""
        return self._call("Poll", header, b"", timeout=wait + 30)

    def submit(self, header: dict[str, Any], payload: bytes = b"", timeout: float = 60) -> Frame:
        """Answer the task named in ``header['task']``."""
        return self._call("Submit", header, payload, timeout)

    def heartbeat(self, header: dict[str, Any], timeout: float = 10) -> None:
        """Say "still working on this task" (a coordinator before heartbeats: UNIMPLEMENTED)."""
        self._call("Heartbeat", header, b"", timeout)

    def fetch(self, digest: str, timeout: float = 120) -> bytes:
        """Download a blob and verify it hashes to ``digest``."""
        frame = self._call("Fetch", {"sha256": digest}, b"", timeout)
        if hashlib.sha256(frame.payload).hexdigest() != digest:
            raise BlobMismatch(f"blob {digest[:12]}… arrived corrupted", "DATA_LOSS")
        return frame.payload


@dataclass(frozen=True)
class TlsProblem:
    """Why the TLS handshake with the coordinator fails: ``cause`` is a short key
    (unknown_ca, wrong_host, expired, ...), ``message`` says it and the fix."""

    cause: str
    message: str


def split_target(target: str) -> tuple[str, int]:
    """(host, port) of a gRPC target such as ``host:port``, ``[::1]:port`` or ``dns:///h:p``."""
    rest = target.split("///", 1)[-1] if "///" in target else target.removeprefix("ipv4:")
    host, _, port = rest.rpartition(":")
    return host.strip("[]"), int(port or 443)


def _verify_problem(err: ssl.SSLCertVerificationError, host: str, ca: Path) -> TlsProblem:
    why = str(err.verify_message or err.reason or err)
    text = why.lower()
    if "mismatch" in text or "not valid for" in text:
        return TlsProblem(
            "wrong_host",
            f"TLS: the coordinator's certificate is not issued for {host!r} ({why}); dial the "
            "host name the certificate was issued for (--host in `pifed certs`) or re-issue it "
            "for this one",
        )
    if "expired" in text or "not yet valid" in text:
        return TlsProblem(
            "expired",
            f"TLS: the coordinator's certificate is not valid now ({why}); re-issue the "
            "certificates with `pifed certs` (and check this Pi's clock)",
        )
    if any(k in text for k in ("issuer", "self-signed", "self signed", "signature", "unknown ca")):
        return TlsProblem(
            "unknown_ca",
            f"TLS: the coordinator's certificate is not signed by the CA in {ca} ({why}); copy "
            "the coordinator's ca.pem from `pifed certs` again",
        )
    return TlsProblem(
        "verify_failed",
        f"TLS: the coordinator's certificate does not verify ({why}); re-issue the certificates "
        f"with `pifed certs` and copy ca.pem to this Pi again",
    )


# What gRPC says when the TCP connection itself failed: no handshake to diagnose then.
NOT_TLS = ("Connection refused", "connect: ", "DNS resolution failed", "unreachable", "No route")


def might_be_tls(error: str) -> bool:
    """Whether an UNAVAILABLE error may come from the TLS handshake (worth a probe), rather than
    from a coordinator that is down or unreachable (a probe would only add a timeout)."""
    return not any(hint in error for hint in NOT_TLS)


def diagnose_tls(cfg: ChannelConfig, timeout: float = 3.0) -> TlsProblem | None:
    """Why a TLS handshake with the coordinator fails, or None when it succeeds or the server
    cannot be reached at all (then the problem is not TLS)."""
    if cfg.insecure or cfg.ca_file is None:
        return None
    host, port = split_target(cfg.target)
    try:
        ctx = ssl.create_default_context(cafile=str(cfg.ca_file))  # the pinned CA only
    except (OSError, ssl.SSLError) as e:
        return TlsProblem(
            "bad_ca_file",
            f"TLS: cannot read a CA certificate from {cfg.ca_file} ({e}); copy the "
            "coordinator's ca.pem from `pifed certs` again",
        )
    ctx.set_alpn_protocols(["h2"])
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as sock,
            ctx.wrap_socket(sock, server_hostname=host),
        ):
            return None
    except ssl.SSLCertVerificationError as e:
        return _verify_problem(e, host, cfg.ca_file)
    except ssl.SSLError as e:
        return TlsProblem(
            "handshake_failed",
            f"TLS: the handshake with {host}:{port} fails ({e.reason or e}); is the coordinator "
            "serving TLS (not --insecure) on that port?",
        )
    except (OSError, ValueError):
        return None
