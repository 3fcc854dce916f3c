"""The coordinator's gRPC face: authentication, size limits and error mapping.

Every call carries ``authorization: Bearer <device token>``. Unknown and revoked tokens, and
devices without a certificate from the enrollment authority, are refused before anything else
is read; a poll presenting another device's certificate is refused too. Each refusal is
logged with its reason and mapped to a gRPC status; the round in progress is not affected by a
bad message from one device.
"""

from __future__ import annotations

import logging
import socket
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from edge.transport import FRAME_OVERHEAD, SERVICE, channel_options
from edge.wire import WireError, decode, encode
from federated.coordinator import CertificateRefused, Coordinator, StaleTask, UnknownBlob
from federated.store import (
    Device,
    RevokedDevice,
    Store,
    StoreError,
    UncertifiedDevice,
    UnknownDevice,
)

log = logging.getLogger("pifed.service")


def message_limit(coordinator: Coordinator) -> int:
    """Largest frame a round needs (a .tflite, the weights, or a masked update), plus room."""
    sizes = [int(a["bytes"]) for a in coordinator.template.artifacts.values()]
    sizes.append(coordinator.template.num_params * 8)  # float32 weights or 64-bit masked words
    return int(max(sizes) * 1.25) + FRAME_OVERHEAD


class FleetService:
    """Binds the Coordinator to three unary byte-frame methods."""

    def __init__(self, coordinator: Coordinator, store: Store, max_bytes: int) -> None:
        self.coordinator = coordinator
        self.store = store
        self.max_bytes = max_bytes
        self.rejections: list[str] = []  # reasons, newest last (also logged)

    def _reject(self, context: grpc.ServicerContext, code: grpc.StatusCode, why: str) -> None:
        peer = context.peer()
        log.warning("rejected %s: %s", peer, why)
        self.rejections.append(why)
        context.abort(code, why)

    def _auth(self, context: grpc.ServicerContext) -> Device:
        token = ""
        for key, value in context.invocation_metadata():
            if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
                token = value[len("Bearer ") :]
        try:
            device = self.store.authenticate(token)
        except (RevokedDevice, UncertifiedDevice) as e:
            self._reject(context, grpc.StatusCode.PERMISSION_DENIED, str(e))
            raise
        except UnknownDevice as e:
            self._reject(context, grpc.StatusCode.UNAUTHENTICATED, str(e))
            raise
        return device

    def _frame(self, request: bytes, context: grpc.ServicerContext, device: Device) -> Any:
        try:
            return decode(request, self.max_bytes)
        except WireError as e:
            self._reject(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"device {device.name}: malformed message: {e}",
            )
            raise

    def poll(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        """Long-poll for the device's next task."""
        device = self._auth(context)
        frame = self._frame(request, context, device)
        try:
            head, payload = self.coordinator.poll(device, frame.header)
        except CertificateRefused as e:
            self._reject(context, grpc.StatusCode.PERMISSION_DENIED, str(e))
            raise
        return encode(head, payload)

    def submit(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        """Hand the answer to an open task to the round."""
        device = self._auth(context)
        frame = self._frame(request, context, device)
        try:
            self.coordinator.submit(device, frame)
        except StaleTask as e:
            self._reject(context, grpc.StatusCode.FAILED_PRECONDITION, str(e))
        except WireError as e:
            self._reject(context, grpc.StatusCode.INVALID_ARGUMENT, f"device {device.name}: {e}")
        return encode({"ok": True})

    def heartbeat(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        """A busy device says it is alive (it is working on a task)."""
        device = self._auth(context)
        frame = self._frame(request, context, device)
        self.coordinator.heartbeat(device, frame.header)
        return encode({"ok": True})

    def fetch(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        """Serve a blob referenced by a model version."""
        device = self._auth(context)
        frame = self._frame(request, context, device)
        try:
            digest = frame.get("sha256", str)
            return encode({"sha256": digest}, self.coordinator.fetch(digest))
        except (UnknownBlob, StoreError, WireError) as e:
            self._reject(context, grpc.StatusCode.NOT_FOUND, f"device {device.name}: {e}")
            raise

    def handler(self) -> grpc.GenericRpcHandler:
        """Generic handler: raw bytes in and out, so no generated protobuf code is needed."""
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Poll": grpc.unary_unary_rpc_method_handler(self.poll),
                "Submit": grpc.unary_unary_rpc_method_handler(self.submit),
                "Fetch": grpc.unary_unary_rpc_method_handler(self.fetch),
                "Heartbeat": grpc.unary_unary_rpc_method_handler(self.heartbeat),
            },
        )


class AddressInUse(OSError):
    """Another process (often another ``pifed server``) holds the address."""


def _in_use(listen: str) -> AddressInUse:
    return AddressInUse(
        f"{listen} is already in use (another pifed server?); stop it or pass another --listen"
    )


def check_address_free(listen: str) -> None:
    """Refuse early, before a model is built or the database is opened, if the address is
    taken. The bind with port sharing off in :func:`serve` is what makes it certain."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    if not port.isdigit() or int(port) == 0:
        return
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise OSError(f"--listen {listen}: cannot resolve {host!r}: {e}") from e
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as s:
        # SO_REUSEADDR as gRPC sets it: a port in TIME_WAIT is free, one with a listener not.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as e:
            raise _in_use(listen) from e


def serve(
    service: FleetService, listen: str, certs: Path | None, threads: int = 128
) -> tuple[grpc.Server, int]:
    """Start the gRPC server; TLS unless ``certs`` is None (the caller's explicit --insecure).

    Port sharing is off (``grpc.so_reuseport`` 0): on Linux gRPC otherwise lets a second
    coordinator bind the same port and the kernel splits the Pis between the two.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads),
        options=[*channel_options(service.max_bytes + FRAME_OVERHEAD), ("grpc.so_reuseport", 0)],
    )
    server.add_generic_rpc_handlers((service.handler(),))
    try:
        if certs is None:
            port = server.add_insecure_port(listen)
        else:
            creds = grpc.ssl_server_credentials(
                [((certs / "server.key").read_bytes(), (certs / "server.pem").read_bytes())]
            )
            port = server.add_secure_port(listen, creds)
    except RuntimeError as e:  # grpcio >= 1.5x raises "Failed to bind to address ..."
        raise _in_use(listen) from e
    if port == 0:
        raise _in_use(listen)
    server.start()
    return server, port
