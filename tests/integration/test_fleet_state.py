"""A real fleet on loopback: the Pi's state folder stays bounded over rounds, and a damaged
deployed model is dropped when `pifed edge` starts and pushed again by the coordinator."""

from __future__ import annotations

from pathlib import Path

import pytest
from fleet_harness import Edge
from test_fleet import _cfg, fleet_factory  # noqa: F401  (a fixture; the others: conftest)

from edge.state import DeviceState
from model.manifest import MANIFEST_NAME, sha256_file

pytestmark = pytest.mark.slow  # starts TensorFlow and real processes


def test_a_damaged_deployed_model_is_fetched_again_and_old_rounds_are_pruned(
    fleet_factory,  # noqa: F811
    certs: Path,
) -> None:
    fleet = fleet_factory(2, _cfg(rounds=2))
    summaries = fleet.server.coordinator.run()
    assert all(s["ok"] and s["promoted"] for s in summaries), summaries
    version = fleet.server.store.deployed().version
    pi = fleet.edges[0]
    pi.wait_for(lambda e: e.get("event") == "deploy" and e.get("deployed") == version)
    state = DeviceState(pi.state)
    kept = sorted(p.name for p in state.versions.iterdir())
    assert kept == [f"v{summaries[0]['version']}", f"v{version}"]  # current and previous only
    work = sorted(p.name.split("-")[0] for p in (pi.state / "work").iterdir())
    assert work == ["eval", "train"]  # the train program in use, the candidate last evaluated
    # The cache holds exactly the blobs of those folders.
    kept_files = [
        f for d in (*state.versions.iterdir(), *(pi.state / "work").iterdir()) for f in d.iterdir()
    ]
    assert {p.name for p in state.cache.iterdir()} == {sha256_file(f) for f in kept_files}

    pi.stop()
    deployed = state.deployed_dir()
    assert deployed is not None
    model = next(deployed.glob("model_*.tflite"))
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])  # a torn write
    again = Edge(
        pi.name,
        fleet.server.port,
        fleet.tokens[pi.name],
        pi.state.parent / "names",
        fleet.root,
        certs / "ca.pem",
    )
    fleet.edges[0] = again
    again.wait_for(lambda e: e.get("event") == "started")
    repaired = [e for e in again.events() if e.get("event") == "state_repaired"]
    assert len(repaired) == 1 and f"v{version}" in repaired[0]["problem"], again.events()
    assert "corrupted" in repaired[0]["problem"]
    started = next(e for e in again.events() if e.get("event") == "started")
    assert started["deployed"] == summaries[0]["version"]  # the good previous one meanwhile
    again.wait_for(lambda e: e.get("event") == "deploy" and e.get("deployed") == version)
    assert state.deployed_version() == version and state.link_problem("current") is None
    assert state.link_problem("previous") is None
    assert (state.deployed_dir() / MANIFEST_NAME).is_file()  # type: ignore[operator]
