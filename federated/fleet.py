"""Assemble a running coordinator: store + Coordinator + gRPC service (TLS by default).

Used by ``pifed server`` (a real deployment) and ``pifed demo`` (coordinator in-process, edge
clients as subprocesses), so both run exactly the same code.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from federated.coordinator import Coordinator, EventSink, FleetConfig
from federated.service import FleetService, check_address_free, message_limit, serve
from federated.store import Store

log = logging.getLogger("pifed.fleet")


@dataclass
class FleetServer:
    """A started coordinator; ``close()`` stops the rounds, the server and the database."""

    store: Store
    coordinator: Coordinator
    service: FleetService
    server: grpc.Server
    port: int
    events: list[dict[str, Any]] = field(default_factory=list)
    _runner: threading.Thread | None = None

    @classmethod
    def start(
        cls,
        db: str | Path,
        model_dir: str | Path,
        cfg: FleetConfig,
        listen: str,
        certs: Path | None,
        on_event: EventSink | None = None,
    ) -> FleetServer:
        """Open the store (aborting a round a crash left open) and start serving."""
        events: list[dict[str, Any]] = []

        def sink(event: dict[str, Any]) -> None:
            events.append(event)
            if on_event:
                on_event(event)

        check_address_free(listen)
        store = Store(db)
        try:
            coordinator = Coordinator(store, str(model_dir), cfg, on_event=sink)
            service = FleetService(coordinator, store, message_limit(coordinator))
            server, port = serve(service, listen, certs)
        except BaseException:
            store.close()
            raise
        log.info("coordinator listening on port %d (%s)", port, "TLS" if certs else "PLAINTEXT")
        return cls(store, coordinator, service, server, port, events)

    def run_rounds_in_background(self) -> threading.Thread:
        """Run the configured rounds on a thread; returns it."""
        self._runner = threading.Thread(target=self.coordinator.run, name="rounds", daemon=True)
        self._runner.start()
        return self._runner

    def close(self, grace: float = 1.0) -> None:
        """Stop rounds and serving; the database is already durable."""
        self.coordinator.stop()
        if self._runner is not None:
            self._runner.join(timeout=30)
        self.server.stop(grace).wait(grace + 5)
        self.store.close()
