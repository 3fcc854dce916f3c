"""The Pi's device token: from a private file, ``--token`` or ``$PIFED_TOKEN``, never silently."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.device_token import (
    TOKEN_ENV,
    TokenError,
    read_token_file,
    resolve_token,
    write_token_file,
)


def _token_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    p = tmp_path / "token"
    p.write_text(text, encoding="utf-8")
    p.chmod(mode)
    return p


def test_a_private_token_file_is_read_without_its_newline(tmp_path: Path) -> None:
    assert read_token_file(_token_file(tmp_path, "s3cret-token\n")) == "s3cret-token"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o666])
def test_a_token_file_others_can_touch_is_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    p = _token_file(tmp_path, "tok", mode)
    with pytest.raises(TokenError, match=f"chmod 600 {p}"):
        read_token_file(p)


@pytest.mark.parametrize(
    ("text", "fragment"), [("", "exactly one token"), ("a b\n", "exactly one token")]
)
def test_an_empty_or_garbled_token_file_is_refused(
    tmp_path: Path, text: str, fragment: str
) -> None:
    with pytest.raises(TokenError, match=fragment):
        read_token_file(_token_file(tmp_path, text))


def test_a_missing_token_file_names_how_to_write_it(tmp_path: Path) -> None:
    with pytest.raises(TokenError, match=r"does not exist.*pifed enroll"):
        read_token_file(tmp_path / "nope")
    with pytest.raises(TokenError, match="not a regular file"):
        read_token_file(tmp_path)


def test_the_file_wins_then_the_flag_then_the_environment(tmp_path: Path) -> None:
    f = str(_token_file(tmp_path, "from-file"))
    env = {TOKEN_ENV: "from-env"}
    assert resolve_token("from-flag", f, env) == "from-file"
    assert resolve_token("from-flag", None, env) == "from-flag"
    assert resolve_token(None, None, env) == "from-env"
    with pytest.raises(TokenError, match="--token-file FILE"):
        resolve_token(None, None, {})


def test_a_written_token_file_is_private_and_reads_back(tmp_path: Path) -> None:
    p = tmp_path / "pi" / "token"
    p.parent.mkdir()
    p.write_text("old")
    p.chmod(0o644)
    write_token_file(p, "new-token")
    assert p.stat().st_mode & 0o777 == 0o600
    assert read_token_file(p) == "new-token"


def test_a_binary_token_file_is_named_with_the_fix(tmp_path: Path) -> None:
    p = tmp_path / "token"
    p.write_bytes(bytes(range(256)))
    p.chmod(0o600)
    with pytest.raises(TokenError, match=r"is not text \(binary or damaged\).*pifed enroll"):
        read_token_file(p)
