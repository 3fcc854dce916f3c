"""The Pi's state folder: damaged versions are dropped at start, and the folder stays bounded.

Fake model files (a hand-made manifest and random bytes) stand in for exported models: these
tests check files and hashes, never run a model, so they run in the fast lane.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edge.fleet_client as fleet_client
from edge.fleet_client import EdgeClient
from edge.state import DeviceState
from edge.tasks import DeployTask, EvaluateTask
from edge.transport import ChannelConfig
from model.encoding import Vocab
from model.manifest import MANIFEST_NAME, ModelManifest
from model.metrics import DEVICE_REPORT_FIELDS
from pifed.cli import main as pifed_main

MODEL = "model_int8.tflite"


def fake_version(seed: int, size: int = 4096) -> dict[str, bytes]:
    """A deployable version's files: manifest.json and a model file with distinct bytes."""
    blob = np.random.default_rng(seed).bytes(size)
    manifest = ModelManifest(
        languages=("English", "Russian"),
        vocab=Vocab(tuple("abc"), 8),
        model_config={},
        artifacts={
            "int8": {"file": MODEL, "sha256": hashlib.sha256(blob).hexdigest(), "bytes": size}
        },
        weights=(),
        train_batch=1,
        version=str(seed),
    )
    return {MANIFEST_NAME: manifest.to_json().encode(), MODEL: blob}


def installed(tmp_path: Path) -> DeviceState:
    """A state folder with v1 as previous and v2 as current."""
    state = DeviceState(tmp_path / "state")
    state.install(1, fake_version(1))
    state.install(2, fake_version(2))
    assert state.deployed_version() == 2
    return state


def test_a_whole_state_needs_no_repair(tmp_path: Path) -> None:
    state = installed(tmp_path)
    assert state.repair() == []
    assert state.deployed_version() == 2 and (state.root / "previous").resolve().name == "v1"


def corrupt(folder: Path) -> None:
    data = bytearray((folder / MODEL).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / MODEL).write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (corrupt, "model_int8.tflite is corrupted"),
        (lambda d: (d / MODEL).unlink(), "model file (model_*.tflite) is missing"),
        (lambda d: (d / MANIFEST_NAME).write_text("{not json"), "manifest.json does not parse"),
        (lambda d: (d / MANIFEST_NAME).unlink(), "manifest.json is missing"),
    ],
)
def test_a_damaged_deployed_version_falls_back_to_the_previous_one(
    tmp_path: Path, damage: Any, says: str
) -> None:
    state = installed(tmp_path)
    damage(state.versions / "v2")
    problems = state.repair()
    assert len(problems) == 1 and "current version v2" in problems[0] and says in problems[0]
    assert state.deployed_version() == 1  # the coordinator now sees 1 and pushes 2 again
    assert not (state.root / "previous").exists() and not (state.versions / "v2").exists()
    state.install(2, fake_version(2))  # the re-fetch
    assert state.deployed_version() == 2 and (state.root / "previous").resolve().name == "v1"
    assert state.repair() == []


def test_a_broken_symlink_or_both_versions_damaged_leaves_nothing_deployed(
    tmp_path: Path,
) -> None:
    state = installed(tmp_path)
    corrupt(state.versions / "v1")
    os.replace(state.root / "current", state.root / "moved")
    os.symlink("versions/v9", state.root / "current")
    problems = state.repair()
    assert len(problems) == 2
    assert "previous version v1" in problems[0] and "corrupted" in problems[0]
    assert "current version v9" in problems[1] and "broken symlink" in problems[1]
    assert state.deployed_version() is None and not (state.root / "current").is_symlink()
    assert not (state.versions / "v1").exists()


def test_install_replaces_a_damaged_copy_of_the_same_version(tmp_path: Path) -> None:
    state = installed(tmp_path)
    corrupt(state.versions / "v1")
    state.install(1, fake_version(1))  # a rollback to v1
    assert state.link_problem("current") is None and state.deployed_version() == 1


def test_predict_on_a_damaged_deployed_model_tells_the_pi_owner_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = installed(tmp_path)
    corrupt(state.versions / "v2")
    assert pifed_main(["predict", "--state", str(state.root), "Ivanov"]) == 2
    err = capsys.readouterr().err
    assert "deployed model" in err and "damaged" in err and "corrupted" in err
    assert "start `pifed edge`" in err and "pifed rollback" in err
    assert "re-export" not in err and "Traceback" not in err
    (state.root / "current").unlink()
    os.symlink("versions/v7", state.root / "current")
    assert pifed_main(["predict", "--state", str(state.root), "Ivanov"]) == 2
    err = capsys.readouterr().err
    assert "broken symlink" in err and "pifed edge" in err and "re-export" not in err


class FakeChannel:
    """What the task handlers need of a FleetChannel: blobs by sha256."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.fetches = 0

    def offer(self, files: dict[str, bytes]) -> dict[str, str]:
        out = {}
        for name, data in files.items():
            digest = hashlib.sha256(data).hexdigest()
            self.blobs[digest] = data
            out[name] = digest
        return out

    def fetch(self, digest: str) -> bytes:
        self.fetches += 1
        return self.blobs[digest]


class FakeClassifier:
    """Stands in for edge.runtime.Classifier: these tests check files, not a model."""

    def __init__(self, path: Path) -> None:
        self.manifest = ModelManifest.load(path.parent)
        self.manifest.verify(path, self.manifest.kind_of(path))


def footprint(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
    return sum(p.stat().st_size for p in files), len(files)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A Pi's few names, in the two languages of the fake models."""
    folder = tmp_path / "names"
    folder.mkdir()
    (folder / "English.txt").write_text("Smith\nJones\nTaylor\nBrown\nWilson\n")
    (folder / "Russian.txt").write_text("Ivanov\nPetrov\nSokolov\nPopov\nLebedev\n")
    return folder


def client(tmp_path: Path, data_dir: Path, events: list[dict[str, Any]]) -> EdgeClient:
    cfg = ChannelConfig("127.0.0.1:1", "token", None, insecure=True)
    return EdgeClient(cfg, data_dir, tmp_path / "state", on_event=events.append)


def test_fifty_rounds_of_evaluate_and_deploy_keep_the_state_folder_flat(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fleet_client, "Classifier", FakeClassifier)
    monkeypatch.setattr(
        fleet_client,
        "evaluate_with_confusion",
        lambda *a: (dict.fromkeys(DEVICE_REPORT_FIELDS, 1), np.zeros((2, 2), np.int64)),
    )
    pi = client(tmp_path, data_dir, [])
    channel: Any = FakeChannel()
    train = pi._folder(channel, channel.offer(fake_version(10_000, 8192)), "train")
    sizes = {}
    for rnd in range(1, 51):
        files = channel.offer(fake_version(rnd))
        pi._on_evaluate(channel, EvaluateTask(rnd, rnd, files), b"")
        fetched = channel.fetches
        pi._on_deploy(channel, DeployTask(rnd, files), b"")
        assert channel.fetches == fetched  # the candidate just evaluated is installed from cache
        sizes[rnd] = footprint(pi.state.root)
    assert pi.state.deployed_version() == 50
    assert sorted(p.name for p in pi.state.versions.iterdir()) == ["v49", "v50"]
    assert train.is_dir()  # the train program in use stays
    assert sizes[50][0] <= sizes[3][0] + 1024 and sizes[50][1] == sizes[3][1], sizes
    # A restart keeps the newest train program, the two versions and their blobs, no more.
    (pi.state.root / "work" / "eval-stale").mkdir()
    (pi.state.cache / ("0" * 64)).write_bytes(b"stale")
    again = client(tmp_path, data_dir, []).state
    assert sorted(p.name for p in (again.root / "work").iterdir()) == [train.name]
    assert len(list(again.cache.iterdir())) == 6  # a manifest and a model each: train, v49, v50
    assert footprint(again.root)[0] < sizes[50][0]


def test_edge_start_drops_a_damaged_version_and_says_so_once(
    tmp_path: Path, data_dir: Path
) -> None:
    state = installed(tmp_path)
    corrupt(state.versions / "v2")
    events: list[dict[str, Any]] = []
    pi = client(tmp_path, data_dir, events)
    repaired = [e for e in events if e["event"] == "state_repaired"]
    assert len(repaired) == 1 and "v2" in repaired[0]["problem"]
    assert "corrupted" in repaired[0]["problem"]
    assert pi.state.deployed_version() == 1
    events.clear()
    client(tmp_path, data_dir, events)
    assert events == []  # nothing left to say on the next start


def test_predict_without_a_deployed_model_says_what_to_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert pifed_main(["predict", "--state", str(tmp_path / "typo"), "Ivanov"]) == 2
    assert "no state folder" in capsys.readouterr().err and not (tmp_path / "typo").exists()
    DeviceState(tmp_path / "state")
    assert pifed_main(["predict", "--state", str(tmp_path / "state"), "Ivanov"]) == 2
    err = capsys.readouterr().err
    assert "no deployed model yet" in err and "pifed edge" in err and "re-export" not in err
