"""Operator mistakes with `pifed enroll` and `pifed authority`: each is refused with exit 2 and a
message naming the problem and the fix, nothing stored is lost, and no private key is echoed
(in-process CLI, real files, real SQLite, real Ed25519)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from edge.device_identity import init_identity, read_certificate
from federated.authority import init_authority
from federated.store import Store, UnknownDevice
from pifed import cli

GARBAGE = bytes(range(256)) * 4  # not UTF-8


def _cli(*argv: str) -> tuple[int, str, str]:
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def fleet(tmp_path: Path) -> dict[str, Path]:
    """An authority, a fleet with pi-1 enrolled online, and a second Pi's identity folder."""
    paths = init_authority(tmp_path / "authority")
    db = tmp_path / "fleet.db"
    pi1 = init_identity(tmp_path / "id/pi-1").public.hex()
    code, _, err = _cli(
        *("enroll", "--db", str(db), "pi-1", "--public-key", pi1),
        *("--authority-key", str(paths.key), "--cert-out", str(tmp_path / "pi-1.cert")),
    )
    assert code == 0, err
    (tmp_path / "pi-2.hex").write_text(init_identity(tmp_path / "id/pi-2").public.hex() + "\n")
    return {"db": db, "key": paths.key, "pub": paths.public, "dir": tmp_path}


def _enroll_pi2(f: dict[str, Path], *extra: str) -> tuple[int, str, str]:
    hex_key = (f["dir"] / "pi-2.hex").read_text().strip()
    return _cli("enroll", "--db", str(f["db"]), "pi-2", "--public-key", hex_key, *extra)


def _enrolled(db: Path, name: str) -> bool:
    with contextlib.closing(Store(db, create=False)) as store:
        try:
            store.device(name)
        except UnknownDevice:
            return False
    return True


def test_the_pi_private_key_given_as_its_public_key_is_named_and_never_echoed(
    fleet: dict[str, Path],
) -> None:
    device_key = fleet["dir"] / "id/pi-2/device.key"
    secret = device_key.read_text().split()[1]
    for given in (str(device_key), device_key.read_text().strip()):  # the file, or pasted
        code, _, err = _cli(
            *("enroll", "--db", str(fleet["db"]), "pi-2", "--public-key", given),
            *("--authority-key", str(fleet["key"])),
        )
        assert code == 2 and "PRIVATE" in err and "must never leave the Pi" in err, err
        assert "`pifed edge --init-identity` printed" in err
        assert secret[:8] not in err.replace(str(fleet["dir"]), "")
    assert not _enrolled(fleet["db"], "pi-2")


def test_binary_files_are_named_with_the_file_that_should_be_passed(
    fleet: dict[str, Path],
) -> None:
    garbage = fleet["dir"] / "garbage.bin"
    garbage.write_bytes(GARBAGE)
    garbage.chmod(0o600)
    code, _, err = _cli(
        *("enroll", "--db", str(fleet["db"]), "pi-2", "--public-key", str(garbage)),
        *("--authority-key", str(fleet["key"])),
    )
    assert code == 2 and f"{garbage} is not text (binary or damaged)" in err, err
    assert "--init-identity` printed" in err and "codec" not in err
    code, _, err = _enroll_pi2(fleet, "--authority-key", str(garbage))
    assert code == 2 and f"{garbage} is not text (binary or damaged)" in err, err
    assert "pass the authority.key `pifed authority init` wrote" in err
    code, _, err = _cli("authority", "sign", str(garbage), "--key", str(fleet["key"]))
    assert code == 2 and f"{garbage} is not text (binary or damaged)" in err, err
    assert "`pifed enroll --request-out` wrote" in err
    code, _, err = _cli("enroll", "--db", str(fleet["db"]), "--import-cert", str(garbage))
    assert code == 2 and f"{garbage} is not text (binary or damaged)" in err, err
    assert "`pifed authority sign` wrote" in err
    assert not _enrolled(fleet["db"], "pi-2")


def test_a_missing_public_key_file_is_named_and_the_help_names_what_the_pi_prints(
    fleet: dict[str, Path],
) -> None:
    missing = fleet["dir"] / "id/pi-2/device.pub"
    code, _, err = _cli(
        *("enroll", "--db", str(fleet["db"]), "pi-2", "--public-key", str(missing)),
        *("--authority-key", str(fleet["key"])),
    )
    assert code == 2 and f"file {missing} does not exist" in err, err
    code, _, err = _cli(
        *(
            "enroll",
            "--db",
            str(fleet["db"]),
            "pi-2",
            "--public-key",
            str(fleet["dir"] / "pi-2.hex"),
        ),
        *("--authority-key", str(fleet["key"]), "--cert-out", str(fleet["dir"] / "pi-2.cert")),
    )
    assert code == 0 and _enrolled(fleet["db"], "pi-2"), err  # a file holding the hex works
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        cli.main(["enroll", "--help"])
    assert "device.pub" not in out.getvalue() and "--init-identity" in out.getvalue()


def test_the_public_authority_key_for_the_private_one_is_named_before_its_mode(
    fleet: dict[str, Path],
) -> None:
    code, _, err = _enroll_pi2(fleet, "--authority-key", str(fleet["pub"]))
    assert code == 2 and "PUBLIC key" in err and "pass the authority.key" in err, err
    assert "chmod" not in err
    request = fleet["dir"] / "pi-2.request"
    code, _, err = _enroll_pi2(fleet, "--request-out", str(request))
    assert code == 0, err
    code, _, err = _cli("authority", "sign", str(request), "--key", str(fleet["pub"]))
    assert code == 2 and "PUBLIC key" in err and "chmod" not in err, err
    fleet["key"].chmod(0o644)  # a real private key that is too open still gets the chmod fix
    code, _, err = _cli("authority", "sign", str(request), "--key", str(fleet["key"]))
    assert code == 2 and f"chmod 600 {fleet['key']}" in err, err


def test_a_certificate_that_cannot_be_written_enrolls_nothing_and_a_rerun_works(
    fleet: dict[str, Path],
) -> None:
    folder = fleet["dir"] / "certs-here"
    folder.mkdir()
    code, out, err = _enroll_pi2(
        fleet, "--authority-key", str(fleet["key"]), "--cert-out", str(folder)
    )
    assert code == 2 and f"{folder} is a folder" in err and out == "", err
    assert not _enrolled(fleet["db"], "pi-2") and list(folder.iterdir()) == []
    code, _, err = _enroll_pi2(fleet, "--request-out", str(folder))
    assert code == 2 and not _enrolled(fleet["db"], "pi-2"), err
    cert = fleet["dir"] / "pi-2.cert"
    code, token, err = _enroll_pi2(
        fleet, "--authority-key", str(fleet["key"]), "--cert-out", str(cert)
    )
    assert code == 0, err
    with contextlib.closing(Store(fleet["db"], create=False)) as store:
        assert store.authenticate(token.strip()).id == read_certificate(cert).device_id


def test_a_refused_enrollment_leaves_no_file_and_no_temp_file(fleet: dict[str, Path]) -> None:
    out_dir = fleet["dir"] / "out"
    out_dir.mkdir()
    pi1 = fleet["dir"] / "id/pi-1/device.key"
    public = init_identity(fleet["dir"] / "id/pi-9").public.hex()
    _cli("enroll", "--db", str(fleet["db"]), "--revoke", "pi-1")
    code, _, err = _cli(  # the store refuses (a revoked name) after the file was reserved
        *("enroll", "--db", str(fleet["db"]), "pi-1", "--public-key", public),
        *("--authority-key", str(fleet["key"]), "--cert-out", str(out_dir / "pi-1.cert")),
    )
    assert code == 2 and "revoked" in err, err
    assert list(out_dir.iterdir()) == [] and pi1.exists()


def test_a_token_that_cannot_be_printed_leaves_the_certificate_written(
    fleet: dict[str, Path],
) -> None:
    cert = fleet["dir"] / "pi-2.cert"
    err = io.StringIO()
    with open("/dev/full", "w") as full:  # a full disk behind `> pi-2.token`
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(full):
            code = cli.main(
                [
                    *("enroll", "--db", str(fleet["db"]), "pi-2", "--public-key"),
                    (fleet["dir"] / "pi-2.hex").read_text().strip(),
                    *("--authority-key", str(fleet["key"]), "--cert-out", str(cert)),
                ]
            )
        with contextlib.suppress(OSError):
            full.close()
    assert code == 2 and "token could not be written" in err.getvalue(), err.getvalue()
    assert "--revoke pi-2" in err.getvalue()
    assert read_certificate(cert).device_name == "pi-2"


def test_keys_are_never_overwritten_by_a_certificate_or_a_request(
    fleet: dict[str, Path],
) -> None:
    device_key = fleet["dir"] / "id/pi-2/device.key"
    before = device_key.read_bytes(), fleet["key"].read_bytes()
    code, _, err = _enroll_pi2(
        fleet, "--authority-key", str(fleet["key"]), "--cert-out", str(device_key)
    )
    assert code == 2 and f"{device_key} holds a Pi's PRIVATE signing key" in err, err
    assert "refusing to overwrite it" in err and not _enrolled(fleet["db"], "pi-2")
    code, _, err = _enroll_pi2(fleet, "--request-out", str(device_key))
    assert code == 2 and "refusing to overwrite it" in err, err
    request = fleet["dir"] / "pi-2.request"
    code, _, err = _enroll_pi2(fleet, "--request-out", str(request))
    assert code == 0, err
    code, _, err = _cli(
        *("authority", "sign", str(request), "--key", str(fleet["key"])),
        *("--out", str(fleet["key"])),
    )
    assert code == 2 and "authority's PRIVATE key" in err and "refusing to overwrite" in err
    assert (device_key.read_bytes(), fleet["key"].read_bytes()) == before
    code, _, err = _cli("authority", "sign", str(request), "--key", str(fleet["key"]))
    assert code == 0, err
    code, _, err = _cli("authority", "sign", str(request), "--key", str(fleet["key"]))
    assert code == 0, err  # an earlier certificate may be replaced


@pytest.mark.parametrize("how", ["--revoke", "--import-cert"])
def test_a_mistyped_db_is_not_created(fleet: dict[str, Path], how: str) -> None:
    typo = fleet["dir"] / "fleet-typo.db"
    args = (
        ["pi-1", "--revoke"]
        if how == "--revoke"
        else ["--import-cert", str(fleet["dir"] / "pi-1.cert")]
    )
    code, _, err = _cli("enroll", "--db", str(typo), *args)
    assert code == 2 and f"no pifed database at {typo}" in err, err
    assert not typo.exists()


def test_flags_that_would_be_ignored_are_refused(fleet: dict[str, Path]) -> None:
    db = str(fleet["db"])
    code, _, err = _cli(
        "enroll", "--db", db, "pi-2", "--import-cert", str(fleet["dir"] / "pi-1.cert")
    )
    assert code == 2 and "certificate of 'pi-1'" in err and "not 'pi-2'" in err, err
    code, _, err = _cli("enroll", "--db", db, "--revoke", "pi-1", "--public-key", "ab" * 32)
    assert code == 2 and "--public-key is not used with --revoke" in err, err
    code, _, err = _enroll_pi2(
        fleet, "--request-out", str(fleet["dir"] / "r"), "--cert-out", str(fleet["dir"] / "c")
    )
    assert code == 2 and "--cert-out goes with --authority-key" in err, err
    code, _, err = _cli(
        *("enroll", "--db", db, "--public-key", (fleet["dir"] / "pi-2.hex").read_text().strip()),
        *("--authority-key", str(fleet["key"]), "--", "-pi2"),
    )
    assert code == 2 and "starts with '-'" in err, err
    assert not _enrolled(fleet["db"], "-pi2") and not _enrolled(fleet["db"], "pi-2")
    assert _enrolled(fleet["db"], "pi-1")


def test_authority_init_refuses_a_pub_left_behind_and_a_file_for_a_folder(tmp_path: Path) -> None:
    paths = init_authority(tmp_path / "a")
    pub = paths.public.read_bytes()
    paths.key.rename(tmp_path / "moved.key")
    code, _, err = _cli("authority", "init", "--out", str(tmp_path / "a"))
    assert code == 2 and "authority.pub already exists" in err, err
    assert paths.public.read_bytes() == pub and not paths.key.exists()
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    code, _, err = _cli("authority", "init", "--out", str(a_file))
    assert code == 2 and f"{a_file} is a file; give a folder" in err and "Errno" not in err, err
    code, _, err = _cli("edge", "--init-identity", "--identity", str(a_file))
    assert code == 2 and f"{a_file} is a file; give a folder" in err and "Errno" not in err, err


@pytest.mark.parametrize(
    ("not_a_key", "why"),
    [("12" * 32, "a typo?"), ("00" * 32, "small-order"), ("01" + "00" * 31, "small-order")],
)
@pytest.mark.parametrize("request_out", [False, True])
def test_hex_that_is_no_ed25519_point_is_refused_before_anything_is_registered(
    fleet: dict[str, Path], request_out: bool, not_a_key: str, why: str
) -> None:
    """64 hex digits can still be no public key (a typo, or a small-order point anyone can sign
    for): refused up front, online or offline, with no device row left behind (the first used
    to be registered before the signing step raised; the small-order ones were certified)."""
    not_a_point = not_a_key
    how = (
        ("--request-out", str(fleet["dir"] / "pi-9.request"))
        if request_out
        else ("--authority-key", str(fleet["key"]))
    )
    code, out, err = _cli(
        "enroll", "--db", str(fleet["db"]), "pi-9", "--public-key", not_a_point, *how
    )
    assert code == 2 and "not a valid Ed25519 public key" in err and why in err, err
    assert "Traceback" not in err and out == ""
    assert not _enrolled(fleet["db"], "pi-9")
    assert not (fleet["dir"] / "pi-9.request").exists()


def test_another_devices_certificate_is_never_replaced(fleet: dict[str, Path]) -> None:
    """A mistyped --cert-out / --out onto a certified Pi's certificate would leave it with one
    it cannot be re-issued (a certified device is refused): refused, naming whose it is."""
    pi1_cert = fleet["dir"] / "pi-1.cert"
    installed = fleet["dir"] / "id/pi-1/device.cert"
    installed.write_bytes(pi1_cert.read_bytes())  # copied to the Pi as told
    before = pi1_cert.read_bytes()
    for target in (installed, pi1_cert):
        code, out, err = _enroll_pi2(
            fleet, "--authority-key", str(fleet["key"]), "--cert-out", str(target)
        )
        assert code == 2 and out == "" and "Traceback" not in err, err
        assert f"{target} holds the certificate of 'pi-1' (device 1); refusing to " in err
        assert "give another file name" in err and not _enrolled(fleet["db"], "pi-2")
        assert target.read_bytes() == before
    request = fleet["dir"] / "pi-2.request"
    assert _enroll_pi2(fleet, "--request-out", str(request))[0] == 0
    code, _, err = _cli(
        *("authority", "sign", str(request), "--key", str(fleet["key"]), "--out", str(pi1_cert))
    )
    assert code == 2 and "holds the certificate of 'pi-1' (device 1)" in err, err
    assert pi1_cert.read_bytes() == before
    cert = fleet["dir"] / "pi-2.cert"  # the same device's certificate may be replaced
    for _ in range(2):
        code, _, err = _cli("authority", "sign", str(request), "--key", str(fleet["key"]))
        assert code == 0 and read_certificate(cert).device_name == "pi-2", err


def test_a_certificate_from_another_authority_is_not_replaced(
    fleet: dict[str, Path], tmp_path: Path
) -> None:
    other = init_authority(tmp_path / "other-fleet")
    theirs = tmp_path / "theirs.cert"  # another fleet's pi-2, same name and (new) id
    hex_key = (fleet["dir"] / "pi-2.hex").read_text().strip()
    code, _, err = _cli(
        *("enroll", "--db", str(tmp_path / "other.db"), "pi-2", "--public-key", hex_key),
        *("--authority-key", str(other.key), "--cert-out", str(theirs)),
    )
    assert code == 0, err
    before = theirs.read_bytes()
    code, _, err = _enroll_pi2(
        fleet, "--authority-key", str(fleet["key"]), "--cert-out", str(theirs)
    )
    assert code == 2 and "signed by another enrollment authority" in err, err
    assert theirs.read_bytes() == before and not _enrolled(fleet["db"], "pi-2")


def test_another_devices_pending_request_is_never_replaced(fleet: dict[str, Path]) -> None:
    request = fleet["dir"] / "pi-2.request"
    assert _enroll_pi2(fleet, "--request-out", str(request))[0] == 0
    before = request.read_bytes()
    pi3 = init_identity(fleet["dir"] / "id/pi-3").public.hex()
    code, out, err = _cli(
        *("enroll", "--db", str(fleet["db"]), "pi-3", "--public-key", pi3),
        *("--request-out", str(request)),
    )
    assert code == 2 and out == "", err
    assert f"{request} holds the enrollment request of 'pi-2' (device 2); refusing to " in err
    assert "give another file name" in err
    assert request.read_bytes() == before and not _enrolled(fleet["db"], "pi-3")
    code, _, err = _enroll_pi2(fleet, "--request-out", str(request))  # the same device: a re-run
    assert code == 0, err


def test_the_recovery_named_when_the_token_cannot_be_printed_works(
    fleet: dict[str, Path],
) -> None:
    """The message's steps, run as given: revoke, move device.key (and device.cert) away,
    --init-identity again, enroll the new public key under a new name."""
    db, folder = str(fleet["db"]), fleet["dir"] / "id/pi-2"
    cert = folder / "device.cert"
    err = io.StringIO()
    with open("/dev/full", "w") as full:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(full):
            code = cli.main(
                [
                    *("enroll", "--db", db, "pi-2", "--public-key"),
                    (fleet["dir"] / "pi-2.hex").read_text().strip(),
                    *("--authority-key", str(fleet["key"]), "--cert-out", str(cert)),
                ]
            )
        with contextlib.suppress(OSError):
            full.close()
    message = err.getvalue()
    assert code == 2 and f"`pifed enroll --db {db} --revoke pi-2`" in message, message
    assert "move device.key (and device.cert) out of its identity folder" in message
    assert "`pifed edge --init-identity --identity DIR` again" in message
    assert "enroll the new public key it prints under a new name" in message
    assert _cli("enroll", "--db", db, "--revoke", "pi-2")[0] == 0
    moved = fleet["dir"] / "moved"
    moved.mkdir()
    for name in ("device.key", "device.cert"):
        (folder / name).rename(moved / name)
    code, public, err2 = _cli("edge", "--init-identity", "--identity", str(folder))
    assert code == 0, err2
    new_key = public.strip().split()[-1]
    code, token, err2 = _cli(
        *("enroll", "--db", db, "pi-2b", "--public-key", new_key),
        *("--authority-key", str(fleet["key"]), "--cert-out", str(cert)),
    )
    assert code == 0, err2
    with contextlib.closing(Store(fleet["db"], create=False)) as store:
        device = store.authenticate(token.strip())
        assert device.name == "pi-2b" and device.id == read_certificate(cert).device_id


def test_a_revoked_or_certified_name_says_how_the_pi_gets_a_new_key(
    fleet: dict[str, Path],
) -> None:
    """Re-enrolling a certified or revoked name is refused with the way out that works: a new
    name and a new key made on the Pi (the old key is never enrolled again)."""
    pi1_again = init_identity(fleet["dir"] / "id/pi-1b").public.hex()
    for step in ("certified", "revoked"):
        if step == "revoked":
            assert _cli("enroll", "--db", str(fleet["db"]), "--revoke", "pi-1")[0] == 0
        code, _, err = _cli(
            *("enroll", "--db", str(fleet["db"]), "pi-1", "--public-key", pi1_again),
            *("--authority-key", str(fleet["key"])),
        )
        assert code == 2 and "under a new name" in err, (step, err)
        assert "pifed edge --init-identity" in err and "device.key" in err, (step, err)
