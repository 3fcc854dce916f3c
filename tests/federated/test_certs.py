"""`pifed certs` output: a CA that signs a server certificate for the given hosts; any of the four
files already there, a file as (or above) --out, a folder it cannot write and a bad host are
refused (exit 2) with nothing written."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from tests_support import main_as_another_user

import federated.certs
from federated.certs import make_certs
from pifed import cli


def test_certs_chain_to_the_ca_and_keys_are_private(tmp_path: Path) -> None:
    paths = make_certs(tmp_path, ("localhost", "127.0.0.1", "pi-coordinator.lan"))
    ca = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    srv = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
    srv.verify_directly_issued_by(ca)
    san = srv.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "pi-coordinator.lan" in san.get_values_for_type(x509.DNSName)
    for key in (paths.ca_key, paths.server_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def _certs(*argv: str) -> tuple[int, str]:
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = cli.main(["certs", *argv])
    return code, err.getvalue() + out.getvalue()


def test_certs_never_replace_an_existing_ca(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    code, msg = _certs("--out", str(out))
    assert code == 0, msg
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, msg = _certs("--out", str(out), "--host", "coordinator.lan")
    assert code == 2
    assert f"{out / 'ca.key'} exists: a new CA breaks every Pi's pinned ca.pem" in msg
    assert "move the folder away to replace it" in msg and "Traceback" not in msg
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # every Pi still trusts it
    (out / "ca.key").unlink()  # a lone ca.pem is still the CA the Pis pin
    code, msg = _certs("--out", str(out))
    assert code == 2 and f"{out / 'ca.pem'} exists" in msg


def test_certs_out_must_be_a_folder(tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_bytes(b"keep me")
    code, msg = _certs("--out", str(f))
    assert code == 2
    assert f"{f} is a file; give a folder" in msg and "Errno" not in msg
    assert f.read_bytes() == b"keep me"


@pytest.mark.parametrize(
    ("host", "says"),
    [
        ("", "--host '': give a host name or address"),
        ("  ", "give a host name or address"),
        ("a" * 74, "labels of 1 to 63"),
        ("coord..lan", "labels of 1 to 63"),
        ("my coordinator", "without spaces"),
        ("kōdinēta.lan", "xn-- form"),
        (
            "localhost:7443",
            "'localhost:7443': give the host name alone (the port goes in --listen)",
        ),
        ("http://x", "--host 'http://x': give the host name, not a URL, as in --host x"),
        ("https://coord.lan:7443/", "not a URL, as in --host coord.lan"),
        ("[::1]", "--host '[::1]': give the address without brackets, as in --host ::1"),
        ("[::1]:7443", "without brackets, as in --host ::1; the port goes in --listen"),
        ("1.2.3.999", "--host '1.2.3.999' is not an IP address (an IPv4 one is four numbers"),
        ("10.0.7", "'10.0.7' is not an IP address"),
        ("::g", "--host '::g' is not an IP address (an IPv6 one looks like fd00::1)"),
        ("pi_coord.lan", "only letters, digits, hyphens and dots (not _)"),
        ("coord/lan", "only letters, digits, hyphens and dots (not /)"),
        ("host:abc", "only letters, digits, hyphens and dots (not :)"),
        ("pi-.lan", "cannot start or end with a hyphen"),
        ("pi.*.lan", "a wildcard is only a leading '*.'"),
        ("*", "a wildcard is only a leading '*.'"),
    ],
)
def test_a_bad_host_is_exit_2_and_nothing_is_written(tmp_path: Path, host: str, says: str) -> None:
    out = tmp_path / "certs"
    code, msg = _certs("--out", str(out), "--host", "localhost", "--host", host)
    assert code == 2, msg
    assert says in msg and "Traceback" not in msg
    assert not out.exists()


def test_names_and_addresses_clients_can_match_go_in_the_san(tmp_path: Path) -> None:
    hosts = ("*.fleet.lan", "Pi-Coord-2.lan", "coord.lan.", "10.0.0.5", "fd00::1", "fe80::1%eth0")
    code, msg = _certs("--out", str(tmp_path), *(a for h in hosts for a in ("--host", h)))
    assert code == 0, msg
    srv = x509.load_pem_x509_certificate((tmp_path / "server.pem").read_bytes())
    san = srv.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["*.fleet.lan", "Pi-Coord-2.lan", "coord.lan."]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == [
        "10.0.0.5",
        "fd00::1",
        "fe80::1",  # the scope (%eth0) is the client's, not the certificate's
    ]


@pytest.mark.parametrize("name", ["server.key", "server.pem"])
def test_a_lone_server_file_is_never_replaced(tmp_path: Path, name: str) -> None:
    out = tmp_path / "certs"
    out.mkdir()
    (out / name).write_bytes(b"the coordinator's own")
    code, msg = _certs("--out", str(out))
    assert code == 2, msg
    assert f"{out / name} exists: pifed certs writes all four files afresh" in msg
    assert "move the folder away to replace it" in msg and "Traceback" not in msg
    assert [p.name for p in out.iterdir()] == [name]
    assert (out / name).read_bytes() == b"the coordinator's own"


def test_an_out_under_a_file_names_the_file(tmp_path: Path) -> None:
    f = tmp_path / "afile"
    f.write_bytes(b"keep me")
    for out in (f / "sub", f / "sub" / "deeper"):
        code, msg = _certs("--out", str(out))
        assert code == 2, msg
        assert f"{f} is a file, not a folder; give a folder for --out" in msg
        assert "Errno" not in msg
    assert f.read_bytes() == b"keep me"


def test_an_out_it_cannot_write_says_so(world_readable_dir: Path) -> None:
    """Run as `nobody` when this is root (root writes through read-only folders)."""
    locked = world_readable_dir / "locked"
    locked.mkdir(mode=0o555)
    locked.chmod(0o555)
    try:
        for out in (locked, locked / "certs"):
            code, msg = main_as_another_user(["certs", "--out", str(out)])
            assert code == 2, msg
            assert (
                f"cannot write certificates in {out}: permission denied (run as the user that "
                "owns it, or choose another --out)"
            ) in msg
            assert "Errno" not in msg
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_a_failed_write_leaves_no_partial_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = federated.certs.write_atomic

    def disk_fills_at_the_server_cert(path: Path, data: bytes) -> None:
        if path.name == "server.pem":  # the OS's answer, which a test cannot make a disk give
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(federated.certs, "write_atomic", disk_fills_at_the_server_cert)
    code, msg = _certs("--out", str(tmp_path))
    assert code == 2, msg
    assert f"cannot write certificates in {tmp_path}: no space left on device" in msg
    assert list(tmp_path.iterdir()) == []  # a re-run is not refused by a lone ca.pem
    monkeypatch.undo()
    code, msg = _certs("--out", str(tmp_path))
    assert code == 0, msg


def test_a_host_longer_than_a_common_name_is_in_the_san(tmp_path: Path) -> None:
    long = f"{'c' * 60}.{'fleet' * 3}.example.lan"  # 88 characters: over X.509's 64 for a CN
    paths = make_certs(tmp_path, (long, "127.0.0.1"))
    srv = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
    san = srv.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [long]
    cn = srv.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == "pifed coordinator"
    short = make_certs(tmp_path / "short", ("coordinator.lan",))
    srv = x509.load_pem_x509_certificate(short.server_cert.read_bytes())
    assert srv.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "coordinator.lan"
