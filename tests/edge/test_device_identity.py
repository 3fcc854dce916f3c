"""A Pi's identity files: its signing key (mode 600), certificate and pinned authority; the
binding of its session client id to its certificate (real Ed25519, real files)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from edge.device_identity import (
    AUTHORITY_KEY_LABEL,
    AUTHORITY_PUB_LABEL,
    IdentityError,
    init_identity,
    load_identity,
    read_certificate,
    write_certificate,
    write_public_key,
    write_secret_key,
)
from edge.secagg import CertificateError, SecAggConfig
from edge.secagg.identity import SigningKey, issue_certificate
from edge.secagg_member import SecAggMember, check_binding
from edge.tasks import TrainTask


def _enrolled(folder: Path, device_id: int = 7, authority: SigningKey | None = None) -> SigningKey:
    """A Pi folder as enrollment leaves it; returns the authority key."""
    authority = authority or SigningKey.generate()
    key = init_identity(folder)
    write_certificate(
        folder / "device.cert", issue_certificate(authority, device_id, "pi-7", key.public)
    )
    write_public_key(folder / "authority.pub", authority.public, AUTHORITY_PUB_LABEL)
    return authority


def test_the_key_is_made_on_the_pi_owner_only_and_never_overwritten(tmp_path: Path) -> None:
    key = init_identity(tmp_path / "id")
    path = tmp_path / "id" / "device.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key.public.hex() not in path.read_text()  # the seed, not the public key
    with pytest.raises(IdentityError, match="already exists; a key is never overwritten"):
        init_identity(tmp_path / "id")


def test_an_enrolled_identity_loads_and_checks_against_the_pinned_authority(
    tmp_path: Path,
) -> None:
    authority = _enrolled(tmp_path)
    identity = load_identity(tmp_path)
    assert identity.certificate.device_id == 7 and identity.authority == authority.public
    assert read_certificate(tmp_path / "device.cert") == identity.certificate


def test_a_key_others_can_read_is_refused_with_the_chmod_fix(tmp_path: Path) -> None:
    _enrolled(tmp_path)
    os.chmod(tmp_path / "device.key", 0o644)
    with pytest.raises(IdentityError, match=r"mode 644.*chmod 600"):
        load_identity(tmp_path)


def test_missing_files_name_the_step_that_makes_them(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match=r"does not exist.*pifed edge --init-identity"):
        load_identity(tmp_path)
    init_identity(tmp_path)
    with pytest.raises(IdentityError, match=r"device certificate .* does not exist"):
        load_identity(tmp_path)


def test_a_certificate_of_another_authority_is_refused(tmp_path: Path) -> None:
    _enrolled(tmp_path)
    other = SigningKey.generate()
    (tmp_path / "authority.pub").unlink()
    write_public_key(tmp_path / "authority.pub", other.public, AUTHORITY_PUB_LABEL)
    with pytest.raises(IdentityError, match="not signed by the pinned enrollment authority"):
        load_identity(tmp_path)


def test_a_key_and_certificate_of_different_enrollments_are_refused(tmp_path: Path) -> None:
    authority = _enrolled(tmp_path / "a")
    _enrolled(tmp_path / "b", authority=authority)
    (tmp_path / "a" / "device.cert").write_bytes((tmp_path / "b" / "device.cert").read_bytes())
    with pytest.raises(IdentityError, match="does not match its certificate"):
        load_identity(tmp_path / "a")


def test_an_authority_key_passed_as_a_device_key_is_named(tmp_path: Path) -> None:
    _enrolled(tmp_path)
    (tmp_path / "device.key").unlink()
    write_secret_key(tmp_path / "device.key", SigningKey.generate(), AUTHORITY_KEY_LABEL)
    with pytest.raises(IdentityError, match="should be one line starting 'pifed-device-key-v1'"):
        load_identity(tmp_path)


def test_a_damaged_certificate_is_named(tmp_path: Path) -> None:
    _enrolled(tmp_path)
    (tmp_path / "device.cert").write_text("pifed-device-certificate-v1 AAAA\n")
    with pytest.raises(IdentityError, match=r"device certificate .* is damaged"):
        load_identity(tmp_path)


def _task(client_id: int, ids: tuple[int, ...] = (7, 8, 9)) -> TrainTask:
    return TrainTask(
        round=1,
        version=1,
        weights_sha256="0" * 64,
        train_files={},
        epochs=1,
        local_steps=None,
        lr=0.1,
        client_id=client_id,
        secagg=SecAggConfig(client_ids=ids, vector_lengths=(4,), threshold=2),
    )


def test_a_pi_refuses_a_session_id_that_is_not_its_certified_device_id(tmp_path: Path) -> None:
    _enrolled(tmp_path, device_id=7)
    identity = load_identity(tmp_path)
    check_binding(7, identity)
    member = SecAggMember(identity)
    with pytest.raises(CertificateError, match=r"client 8, but its certificate is for device 7"):
        member.begin(_task(8), np.zeros(4, np.float32), 10)
    assert not member.active
    member.begin(_task(7), np.zeros(4, np.float32), 10)
    assert member.active
    member.leave()
    assert not member.active
