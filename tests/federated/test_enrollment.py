"""Enrollment with an authority: the commands an operator runs (in-process CLI), the store's
checks on every certificate, revocation, and a schema-1 fleet brought up to date (real files,
real SQLite, real Ed25519)."""

from __future__ import annotations

import contextlib
import io
import sqlite3
import stat
from pathlib import Path

import pytest

from edge.device_identity import init_identity, load_identity, read_certificate
from edge.secagg.identity import SigningKey, issue_certificate
from federated.authority import (
    enroll_request,
    enroll_signed,
    init_authority,
    load_authority_key,
    sign_request,
)
from federated.store import RevokedDevice, Store, StoreError, UncertifiedDevice
from pifed import cli


def _cli(*argv: str) -> tuple[int, str, str]:
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_authority_init_writes_a_private_key_and_refuses_to_replace_it(tmp_path: Path) -> None:
    code, out, _ = _cli("authority", "init", "--out", str(tmp_path / "usb"))
    assert code == 0, out
    assert stat.S_IMODE((tmp_path / "usb" / "authority.key").stat().st_mode) == 0o600
    key = load_authority_key(tmp_path / "usb" / "authority.key")
    assert key.public.hex() in out
    assert key.public.hex() in (tmp_path / "usb" / "authority.pub").read_text()
    code, _, err = _cli("authority", "init", "--out", str(tmp_path / "usb"))
    assert code == 2 and "never overwritten" in err


def test_online_enrollment_from_the_pi_public_key_to_an_active_device(tmp_path: Path) -> None:
    db = str(tmp_path / "fleet.db")
    _cli("authority", "init", "--out", str(tmp_path / "usb"))
    code, public, _ = _cli("edge", "--init-identity", "--identity", str(tmp_path / "pi"))
    assert code == 0 and len(public.strip()) == 64
    code, token, err = _cli(
        *("enroll", "--db", db, "pi-kitchen", "--public-key", public.strip()),
        *("--authority-key", str(tmp_path / "usb/authority.key")),
        *("--cert-out", str(tmp_path / "pi" / "device.cert")),
    )
    assert code == 0, err
    (tmp_path / "pi" / "authority.pub").write_bytes((tmp_path / "usb/authority.pub").read_bytes())
    identity = load_identity(tmp_path / "pi")  # what `pifed edge --identity` loads
    store = Store(db)
    device = store.authenticate(token.strip())  # the token alone on stdout
    assert identity.certificate.device_id == device.id and device.status == "active"
    assert store.authority() == identity.authority
    store.close()
    code, out, _ = _cli("devices", "--db", db)
    assert "pi-kitchen" in out and "active" in out


def test_offline_enrollment_request_sign_import(tmp_path: Path) -> None:
    db = str(tmp_path / "fleet.db")
    _cli("authority", "init", "--out", str(tmp_path / "offline"))
    public = init_identity(tmp_path / "pi").public.hex()
    code, token, err = _cli(
        *("enroll", "--db", db, "pi-shed", "--public-key", public),
        *("--request-out", str(tmp_path / "pi-shed.request")),
        *("--authority", str(tmp_path / "offline/authority.pub")),
    )
    assert code == 0, err
    store = Store(db)
    with pytest.raises(UncertifiedDevice, match=r"no certificate.*--import-cert"):
        store.authenticate(token.strip())  # pending: refused until its certificate is in
    store.close()
    code, _, err = _cli(
        *("authority", "sign", str(tmp_path / "pi-shed.request")),
        *("--key", str(tmp_path / "offline/authority.key")),
    )
    assert code == 0, err
    code, _, err = _cli("enroll", "--db", db, "--import-cert", str(tmp_path / "pi-shed.cert"))
    assert code == 0, err
    store = Store(db)
    device = store.authenticate(token.strip())
    assert read_certificate(tmp_path / "pi-shed.cert").device_id == device.id
    store.close()


def test_the_signer_refuses_a_key_that_is_not_the_fleet_authority(tmp_path: Path) -> None:
    store = Store(tmp_path / "fleet.db")
    fleet_authority = SigningKey.generate()
    _, request = enroll_request(store, "pi-1", SigningKey.generate().public, fleet_authority.public)
    with pytest.raises(ValueError, match="is not the one the fleet pins"):
        sign_request(request, SigningKey.generate())
    assert sign_request(request, fleet_authority).device_id == request.device_id
    store.close()


def test_the_store_refuses_certificates_it_did_not_ask_for(tmp_path: Path) -> None:
    store = Store(tmp_path / "fleet.db")
    authority = SigningKey.generate()
    pi_key = SigningKey.generate()
    _, request = enroll_request(store, "pi-1", pi_key.public, authority.public)
    did = request.device_id
    with pytest.raises(UncertifiedDevice, match="not signed by the pinned enrollment authority"):
        store.certify(issue_certificate(SigningKey.generate(), did, "pi-1", pi_key.public))
    with pytest.raises(UncertifiedDevice, match="another public key"):
        store.certify(issue_certificate(authority, did, "pi-1", SigningKey.generate().public))
    with pytest.raises(UncertifiedDevice, match="does not hold"):
        store.certify(issue_certificate(authority, did + 5, "pi-9", pi_key.public))
    with pytest.raises(ValueError, match="already enrolled as device 'pi-1'"):
        enroll_signed(store, "pi-2", pi_key.public, authority)  # a copied key
    with pytest.raises(StoreError, match="pins enrollment authority"):
        enroll_signed(store, "pi-3", SigningKey.generate().public, SigningKey.generate())
    store.certify(sign_request(request, authority))
    assert store.device("pi-1").status == "active"
    store.close()


def test_revocation_refuses_the_token_and_the_certificate(tmp_path: Path) -> None:
    store = Store(tmp_path / "fleet.db")
    authority = SigningKey.generate()
    pi_key = SigningKey.generate()
    token, cert = enroll_signed(store, "pi-1", pi_key.public, authority)
    code, _, err = _cli("enroll", "--db", str(tmp_path / "fleet.db"), "--revoke", "pi-1")
    assert code == 0, err
    with pytest.raises(RevokedDevice):
        store.authenticate(token)
    with pytest.raises(RevokedDevice, match="its certificate is refused"):
        store.certify(cert)
    with pytest.raises(RevokedDevice):
        enroll_signed(store, "pi-1", pi_key.public, authority)  # no re-keying a revoked name
    assert store.device("pi-1").status == "revoked"
    store.close()


def test_a_schema_1_fleet_is_migrated_and_its_devices_finish_enrollment(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    store = Store(db)
    token = store.enroll("pi-old")
    store.close()
    con = sqlite3.connect(db)  # what a fleet made before device identities looks like
    con.execute("DROP INDEX devices_public_key")
    con.execute("ALTER TABLE devices DROP COLUMN certificate")
    con.execute("ALTER TABLE devices DROP COLUMN public_key")
    con.execute("UPDATE meta SET value='1' WHERE key='schema'")
    con.commit()
    con.close()
    store = Store(db)
    with pytest.raises(UncertifiedDevice, match="pi-old"):
        store.authenticate(token)
    kept, _ = enroll_signed(store, "pi-old", SigningKey.generate().public, SigningKey.generate())
    assert kept == ""  # the Pi keeps the token it has
    assert store.authenticate(token).name == "pi-old"
    store.close()


def test_enroll_says_what_is_missing(tmp_path: Path) -> None:
    db = str(tmp_path / "fleet.db")
    code, _, err = _cli("enroll", "--db", db, "pi-1")
    assert code == 2 and "--public-key HEX" in err and "--init-identity" in err
    code, _, err = _cli("enroll", "--db", db, "pi-1", "--public-key", "ab" * 32)
    assert code == 2 and "--authority-key FILE, or --request-out FILE" in err
    paths = init_authority(tmp_path / "a")
    code, _, err = _cli(
        *("enroll", "--db", db, "pi-1", "--public-key", "xyz"), "--authority-key", str(paths.key)
    )
    assert code == 2 and "64 hex digits" in err
