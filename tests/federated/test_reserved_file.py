"""ReservedFile: the place taken before a commit, the content written after it (real files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from federated.reserved_file import ReservedFile


def test_an_error_before_fill_leaves_the_target_as_it_was_and_no_temp_file(
    tmp_path: Path,
) -> None:
    target = tmp_path / "pi-1.cert"
    target.write_text("the earlier certificate\n")
    with pytest.raises(RuntimeError, match="the commit failed"), ReservedFile(target):
        assert len(list(tmp_path.iterdir())) == 2  # the target and its reservation
        raise RuntimeError("the commit failed")
    assert target.read_text() == "the earlier certificate\n"
    assert [p.name for p in tmp_path.iterdir()] == ["pi-1.cert"]


def test_fill_replaces_the_target_with_exactly_the_text(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "pi-1.request"
    with ReservedFile(target) as slot:
        assert slot.fill("{}\n") == target
    assert target.read_bytes() == b"{}\n"
    assert [p.name for p in target.parent.iterdir()] == ["pi-1.request"]


def test_a_folder_that_cannot_hold_the_file_fails_before_anything_else(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(OSError):
        ReservedFile(blocker / "pi-1.cert")
    assert blocker.read_text() == "x"
