"""`pifed certs` output: a CA that signs a server certificate for the given hosts."""

from __future__ import annotations

import stat
from pathlib import Path

from cryptography import x509

from federated.certs import make_certs


def test_certs_chain_to_the_ca_and_keys_are_private(tmp_path: Path) -> None:
    paths = make_certs(tmp_path, ("localhost", "127.0.0.1", "pi-coordinator.lan"))
    ca = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    srv = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
    srv.verify_directly_issued_by(ca)
    san = srv.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "pi-coordinator.lan" in san.get_values_for_type(x509.DNSName)
    for key in (paths.ca_key, paths.server_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
