"""`pifed certs` output: a CA that signs a server certificate for the given hosts; an existing CA,
a file as --out and a bad host are refused (exit 2) with nothing written."""

from __future__ import annotations

import contextlib
import io
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

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
    ],
)
def test_a_bad_host_is_exit_2_and_nothing_is_written(tmp_path: Path, host: str, says: str) -> None:
    out = tmp_path / "certs"
    code, msg = _certs("--out", str(out), "--host", "localhost", "--host", host)
    assert code == 2, msg
    assert says in msg and "Traceback" not in msg
    assert not out.exists()


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
