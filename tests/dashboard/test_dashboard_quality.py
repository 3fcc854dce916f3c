"""The Quality page and /api/quality (issue 22) against a real store file: the fleet total of
the deployed version, per-language recall and confusions; malformed requests; a version with
no fleet quality; a schema-2 file (before the table) read and then migrated."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from store_fill import fill_store

from federated.dashboard.app import build_app
from federated.dashboard.data import FleetData
from federated.store import Store, StoreError
from federated.store_views import FleetViews

LANGS = ("Czech", "Dutch", "Greek")
COUNTS = [[50, 7, 3], [2, 40, 0], [0, 0, 0]]  # no Greek names in the fleet's held-out sets


def _client(db: Path) -> TestClient:
    return TestClient(build_app(FleetData(FleetViews(db))))


@pytest.fixture
def db(tmp_path: Path) -> tuple[Path, int]:
    path = tmp_path / "fleet.db"
    fill_store(path, devices=4, rounds=6)
    store = Store(path)
    deployed = store.deployed()
    assert deployed is not None and deployed.round_id is not None
    store.add_fleet_quality(deployed.version, deployed.round_id, LANGS, COUNTS, 3)
    store.close()
    return path, deployed.version


def test_api_quality_is_the_stored_fleet_total_of_the_deployed_version(db) -> None:
    path, version = db
    q = _client(path).get("/api/quality").json()
    assert q["available"] and q["deployed"] and q["version"] == version
    assert q["counts"] == COUNTS and q["languages"] == list(LANGS) and q["devices"] == 3
    assert q["recall"] == {"Czech": 50 / 60, "Dutch": 40 / 42, "Greek": None}
    assert q["support"] == {"Czech": 60, "Dutch": 42, "Greek": 0}
    assert q["accuracy"] == 90 / 102 and q["balanced_accuracy"] == (50 / 60 + 40 / 42) / 2
    assert q["confusions"][0] == {"true": "Czech", "predicted": "Dutch", "count": 7}
    assert [c["count"] for c in q["confusions"]] == [7, 3, 2]
    assert q["versions_with_quality"] == [version]


def test_the_quality_page_shows_recall_and_the_heatmap(db) -> None:
    path, _ = db
    c = _client(path)
    page = c.get("/quality").text
    assert 'href="/quality" class="here"' in page and 'id="recall"' in page
    assert 'data-language="Czech"' in page and "0.833" in page and "<svg" in page
    assert "Czech as Dutch: 7" in page  # the heatmap cell's title
    assert 'href="/quality"' in c.get("/").text  # linked in the nav of every page


def test_malformed_and_missing_quality(db) -> None:
    path, version = db
    c = _client(path)
    assert c.get("/api/quality?version=abc").status_code == 400
    assert c.get("/quality?version=-1").status_code == 400
    other = c.get(f"/api/quality?version={version + 1000}").json()
    assert other == {
        "version": version + 1000,
        "deployed": False,
        "available": False,
        "versions_with_quality": [version],
    }
    assert 'id="no-quality"' in c.get(f"/quality?version={version + 1000}").text


def test_one_device_counts_are_never_stored(tmp_path: Path) -> None:
    path = tmp_path / "fleet.db"
    fill_store(path, devices=2, rounds=2)
    store = Store(path)
    v = store.deployed()
    assert v is not None and v.round_id is not None
    with pytest.raises(StoreError, match="one Pi's label mix"):
        store.add_fleet_quality(v.version, v.round_id, LANGS, COUNTS, 1)
    with pytest.raises(StoreError, match="3 x 3"):
        store.add_fleet_quality(v.version, v.round_id, LANGS, [[1, 2]], 2)
    store.close()


def test_a_schema_2_file_reads_without_quality_and_migrates(tmp_path: Path) -> None:
    path = tmp_path / "fleet.db"
    fill_store(path, devices=2, rounds=2)
    con = sqlite3.connect(path)  # what a fleet made before issue 22 looks like
    con.execute("DROP TABLE fleet_quality")
    con.execute("UPDATE meta SET value='2' WHERE key='schema'")
    con.commit()
    con.close()
    q = _client(path).get("/api/quality").json()
    assert not q["available"] and q["versions_with_quality"] == []
    Store(path).close()  # the coordinator opens it: migrated to schema 3
    con = sqlite3.connect(path)
    assert con.execute("SELECT value FROM meta WHERE key='schema'").fetchone() == ("3",)
    assert con.execute("SELECT COUNT(*) FROM fleet_quality").fetchone() == (0,)
