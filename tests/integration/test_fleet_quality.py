"""Issue 22's fleet quality on a real fleet on loopback: a TLS coordinator, three `pifed edge`
subprocesses, real secure aggregation and real TFLite evaluation.

A round stores the deployed version's fleet quality, which is exactly the sum of the three
Pis' confusion counts (recomputed here from each Pi's own held-out names and the candidate's
deployable file), and the dashboard's ``/api/quality`` (served beside the coordinator, as
``pifed server --dashboard`` wires it) returns it. The quality session's timings are printed
(the cost the report quotes).
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from fleet_harness import device_folders, started_fleet
from test_fleet import _cfg

from edge.evaluate import evaluate_with_confusion, labels_for_model
from edge.runtime import Classifier
from federated.dashboard.wiring import dashboard_beside
from federated.round_runner import deployable_files
from model.dataset import NamesDataset, load_names
from model.split import split_by_name

pytestmark = pytest.mark.slow  # TensorFlow, real processes


def _true_counts(folder: Path, seed: int, model_dir: Path) -> np.ndarray:
    """What the Pi with this names folder and seed computes on its held-out share."""
    clf = Classifier(next(model_dir.glob("model_*.tflite")))
    ds = load_names(folder, min_languages=1)
    _, hold = split_by_name(ds, 0.2, seed)
    sub = ds.subset(hold)
    return evaluate_with_confusion(clf, list(sub.names), labels_for_model(sub, clf.languages))[1]


def test_a_round_stores_the_fleet_quality_and_the_api_returns_it(
    tmp_path: Path, fleet_model: Path, certs: Path, ds: NamesDataset
) -> None:
    folders = device_folders(ds, tmp_path, 3, per_device=400)
    with started_fleet(tmp_path, fleet_model, certs, _cfg(rounds=1), folders) as fleet:
        dash = dashboard_beside(fleet.server, "127.0.0.1:0", None)
        try:
            summaries = fleet.server.coordinator.run()
            assert summaries[0]["ok"] and summaries[0]["promoted"], summaries
            store = fleet.server.store
            v = store.deployed()
            assert v is not None and v.version == summaries[0]["version"]
            with urllib.request.urlopen(dash.url.rstrip("/") + "/api/quality", timeout=10) as r:
                q = json.loads(r.read())
        finally:
            dash.close()
        timings = summaries[0]["timings"]
        print(
            "quality cost (3 Pis, loopback): "
            + json.dumps(
                {k: round(s, 3) for k, s in timings.items() if "evaluate" in k or "quality" in k}
            )
        )
        model_dir = tmp_path / "candidate"
        model_dir.mkdir()
        kind = fleet.server.coordinator.cfg.deploy_kind
        for name, sha in deployable_files(v, kind).items():  # what the Pis evaluated
            (model_dir / name).write_bytes(store.get_blob(sha))
        expected = sum(_true_counts(f, i, model_dir) for i, f in enumerate(folders))
    assert q["available"] and q["deployed"] and q["version"] == v.version
    assert q["devices"] == 3 and q["round"] == summaries[0]["round"]
    assert q["counts"] == np.asarray(expected).tolist()
    assert q["names"] == int(np.asarray(expected).sum())
    # The per-device reports the gate used agree with the secure sum on the total count.
    assert summaries[0]["fleet"]["n_devices"] == 3
