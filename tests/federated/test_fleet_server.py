"""The coordinator's gRPC server in-process on 127.0.0.1: the port is its alone.

Real gRPC, a real SQLite file; the store is seeded with a version 1 so no TensorFlow is needed.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import grpc
import pytest
from fleet_fakes import fake_cfg as _cfg  # tests/ on sys.path
from fleet_fakes import seeded_store as _store

from edge.transport import SERVICE
from edge.wire import encode
from federated.fleet import FleetServer
from federated.service import AddressInUse
from pifed import cli


def _answers(port: int) -> grpc.StatusCode:
    """A Poll with an unknown token: a serving coordinator answers UNAUTHENTICATED."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        call = ch.unary_unary(f"/{SERVICE}/Poll")
        with pytest.raises(grpc.RpcError) as e:
            call(encode({}), metadata=(("authorization", "Bearer nope"),), timeout=5)
    return e.value.code()


def test_a_second_server_on_the_same_address_fails_and_the_first_keeps_serving(
    fleet_dir: Path,
) -> None:
    store, _ = _store(fleet_dir, ["a"])
    store.close()
    first = FleetServer.start(
        fleet_dir / "fleet.db", fleet_dir / "model", _cfg(), "127.0.0.1:0", None
    )
    try:
        listen = f"127.0.0.1:{first.port}"
        with pytest.raises(AddressInUse, match="already in use"):
            FleetServer.start(fleet_dir / "other.db", fleet_dir / "model", _cfg(), listen, None)
        assert not (fleet_dir / "other.db").exists()  # refused before the database is opened
        # `pifed server` on the same address: exit 2 with the address, before a model is built.
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = cli.main(
                ["server", "--db", str(fleet_dir / "cli.db"), "--insecure", "--listen", listen]
            )
        assert code == 2 and f"{listen} is already in use" in err.getvalue()
        assert not (fleet_dir / "cli.db.model").exists()
        assert _answers(first.port) == grpc.StatusCode.UNAUTHENTICATED
    finally:
        first.close()


def test_grpc_port_sharing_is_off(fleet_dir: Path) -> None:
    """Even past the early check (a race), the gRPC bind itself refuses a shared port."""
    from federated.service import FleetService, serve

    store, _ = _store(fleet_dir, ["a"])
    store.close()
    first = FleetServer.start(
        fleet_dir / "fleet.db", fleet_dir / "model", _cfg(), "127.0.0.1:0", None
    )
    try:
        service = FleetService(first.coordinator, first.store, 1 << 20)
        with pytest.raises(AddressInUse):
            serve(service, f"127.0.0.1:{first.port}", None, threads=2)
        assert _answers(first.port) == grpc.StatusCode.UNAUTHENTICATED
    finally:
        first.close()
