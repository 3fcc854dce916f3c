"""Put a dashboard together: beside a running coordinator (``pifed server --dashboard``) or
over a store file alone (``pifed dashboard --db FILE``, read-only)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from federated.broker import TaskBroker
from federated.dashboard.actions import EventSink, FleetActions
from federated.dashboard.app import DashboardConfig, build_app
from federated.dashboard.auth import OperatorAuth, read_operator_token
from federated.dashboard.data import FleetData, LinkInfo, LinkSource
from federated.dashboard.server import DashboardServer, parse_address, tls_files
from federated.store_views import FleetViews


def broker_links(broker: TaskBroker) -> LinkSource:
    """What the running coordinator's broker knows of each device, as the dashboard shows it."""
    live_ids = lambda: {lk.device_id for lk in broker.live_devices()}  # noqa: E731

    def links() -> Mapping[int, LinkInfo]:
        live = live_ids()
        return {
            lk.device_id: LinkInfo(lk.device_id in live, lk.deployed, lk.platform)
            for lk in broker.links()
        }

    return links


@dataclass
class RunningDashboard:
    """A served dashboard and what it holds open; ``close()`` releases all of it."""

    server: DashboardServer
    views: FleetViews
    actions: FleetActions | None
    _closed: list[bool] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Where a browser opens it."""
        return self.server.url

    def close(self) -> None:
        """Stop serving, close the store connections."""
        if self._closed:
            return
        self._closed.append(True)
        self.server.close()
        self.views.close()
        if self.actions is not None:
            self.actions.close()


def check_dashboard(address: str, certs: Path | None, operator_token: Path | None) -> None:
    """Raise (``ValueError`` naming the fix) before anything starts if the address, the TLS
    files it needs or the operator token file are not right."""
    host, _ = parse_address(address)
    tls_files(host, certs)
    if operator_token is not None:
        read_operator_token(operator_token)


def start_dashboard(
    db: str | Path,
    address: str,
    certs: Path | None = None,
    operator_token: Path | None = None,
    links: LinkSource | None = None,
    on_deployed: Callable[[], None] | None = None,
    on_event: EventSink | None = None,
) -> RunningDashboard:
    """Serve the dashboard of the fleet in ``db`` on ``address`` (``HOST:PORT``).

    ``operator_token`` (a file) enables the operator's actions; without it the dashboard is
    read-only. Off loopback it serves HTTPS with ``certs`` or refuses to start.
    """
    host, port = parse_address(address)
    tls = tls_files(host, certs)
    auth = OperatorAuth(read_operator_token(operator_token)) if operator_token else None
    views = FleetViews(db)
    actions: FleetActions | None = None
    try:
        if auth is not None:
            actions = FleetActions(db, on_deployed, on_event)
        app = build_app(
            FleetData(views, links), auth, actions, DashboardConfig(secure_cookies=tls is not None)
        )
        server = DashboardServer.start(app, host, port, tls)
    except BaseException:
        views.close()
        if actions is not None:
            actions.close()
        raise
    return RunningDashboard(server, views, actions)


def dashboard_beside(fleet: Any, address: str, certs: Path | None, **kw: Any) -> RunningDashboard:
    """A dashboard for a started ``federated.fleet.FleetServer``: its links, and a rollback
    wakes its Pis' long-polls so every connected Pi is sent the version at once."""
    broker = fleet.coordinator.broker
    return start_dashboard(
        fleet.store.path,
        address,
        certs,
        links=broker_links(broker),
        on_deployed=broker.push_deployment,
        **kw,
    )
