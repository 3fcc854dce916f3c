"""`pifed rollback`: only versions the gate promoted (unless the operator says --force), known
and with every blob on disk."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from federated.store import Store
from pifed import cli


def _fleet(db: Path) -> tuple[int, int, int]:
    store = Store(db)
    v1 = store.add_version(b"w1", {"model_float.tflite": b"f1"}, "initial")
    r = store.start_round(v1, [1, 2])
    v2 = store.add_version(b"w2", {"model_float.tflite": b"f2"}, "candidate", v1, r)
    store.judge_version(v2, True, "good", {"accuracy": 0.8})
    v3 = store.add_version(b"w3", {"model_float.tflite": b"f3"}, "candidate", v2, r)
    store.judge_version(v3, False, "worse", {"accuracy": 0.1})
    store.close()
    return v1, v2, v3


def _rollback(db: Path, *args: str) -> tuple[int, str]:
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = cli.main(["rollback", "--db", str(db), *args])
    return code, err.getvalue() + out.getvalue()


def _deployed(db: Path) -> int | None:
    store = Store(db)
    v = store.deployed()
    store.close()
    return v.version if v else None


def test_rollback_to_the_initial_version_needs_force(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    v1, v2, v3 = _fleet(db)
    code, msg = _rollback(db, str(v1))
    assert code == 2
    assert f"version {v1} is initial, not promoted by the gate" in msg
    assert f"versions the gate promoted: {v2} " in msg and "--force" in msg
    assert _deployed(db) == v2  # nothing changed
    code, msg = _rollback(db, str(v3))
    assert code == 2 and f"version {v3} is rejected" in msg
    code, msg = _rollback(db, str(v1), "--force")
    assert code == 0, msg
    assert _deployed(db) == v1
    code, msg = _rollback(db, str(v2))
    assert code == 0, msg
    assert _deployed(db) == v2


def test_with_nothing_promoted_the_message_says_so(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    store = Store(db)
    v1 = store.add_version(b"w1", {}, "initial")
    store.close()
    code, msg = _rollback(db, str(v1))
    assert code == 2 and "the gate has promoted no version yet" in msg


def test_a_version_beyond_sqlite_integers_is_an_unknown_version(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    _, v2, _ = _fleet(db)
    for huge in ("99999999999999999999", str(2**63)):
        code, msg = _rollback(db, huge)
        assert code == 2, msg
        assert f"model version {huge} does not exist (see `pifed models`)" in msg
        assert "Traceback" not in msg and "Overflow" not in msg
    assert _deployed(db) == v2


@pytest.mark.parametrize("file", ["model_float.tflite", "weights"])
def test_a_version_missing_a_blob_is_refused_and_nothing_changes(tmp_path: Path, file: str) -> None:
    db = tmp_path / "fleet.db"
    v1, v2, _ = _fleet(db)
    store = Store(db)
    v = store.version(v1)
    (store.blob_dir / (v.weights_sha256 if file == "weights" else v.artifacts[file])).unlink()
    store.close()
    code, msg = _rollback(db, str(v1), "--force")
    assert code == 2, msg
    assert f"version {v1}'s {file}: blob " in msg and "is missing" in msg
    assert "roll back to an intact version (see `pifed models`)" in msg
    assert "nothing was changed" in msg and "Traceback" not in msg
    assert _deployed(db) == v2  # the next `pifed server` start still finds every blob it serves
    code, msg = _rollback(db, str(v2))
    assert code == 0, msg
