"""Fixtures of the fleet tests: the names data, a tiny starting model and a certificate
authority, each made once per test module."""

from __future__ import annotations

from pathlib import Path

import pytest

from federated.certs import make_certs
from model.dataset import NamesDataset, load_names


@pytest.fixture(scope="module")
def ds(data_dir: Path) -> NamesDataset:
    return load_names(data_dir)


@pytest.fixture(scope="module")
def fleet_model(tmp_path_factory: pytest.TempPathFactory, ds: NamesDataset) -> Path:
    from federated.exporter import init_model  # TensorFlow: only the tests that use it

    out = tmp_path_factory.mktemp("init-model")
    init_model(out, ds.languages, seed=0, units=8, embed_dim=8, bidirectional=False)
    return out


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certs(tmp_path_factory.mktemp("certs")).ca_cert.parent
