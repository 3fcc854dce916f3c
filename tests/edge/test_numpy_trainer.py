"""The numpy trainer takes the same SGD steps as train.tflite's ``train`` signature (issue 17).

The models are exported by the real code (``model.export.export_artifacts``, the train artifact
only, tiny sizes); both trainers start from the same weights and draw the same batches from
the same rng, and after 10 SGD steps their weights agree to 1e-5.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from edge import TF_MODULES
from edge.evaluate import labels_for_model
from edge.local_trainer import LocalTrainer
from edge.numpy_trainer import NumpyTrainer
from edge.trainer import OnDeviceTrainer
from model.dataset import NamesDataset, load_names
from model.manifest import WeightShapeError, unflatten_weights

pytestmark = pytest.mark.slow  # starts TensorFlow, TFF or real processes

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-5


def _export(out: Path, languages: tuple[str, ...], bidirectional: bool) -> Path:
    import tensorflow as tf

    from federated.exporter import synthetic_calibration
    from model.config import MAX_LEN, ModelConfig
    from model.encoding import Vocab, public_alphabet
    from model.export import export_artifacts
    from model.gru import build_classifier

    tf.keras.utils.set_random_seed(0)
    vocab = Vocab(public_alphabet(), MAX_LEN)
    cfg = ModelConfig(
        num_classes=len(languages),
        vocab_size=vocab.size,
        units=8,
        embed_dim=8,
        bidirectional=bidirectional,
    )
    export_artifacts(
        build_classifier(cfg),
        cfg,
        vocab,
        languages,
        synthetic_calibration(vocab),
        out,
        kinds=("train",),
    )
    return out


@pytest.fixture(scope="module")
def ds(data_dir: Path) -> NamesDataset:
    return load_names(data_dir)


@pytest.fixture(scope="module", params=[True, False], ids=["bidirectional", "unidirectional"])
def model_dir(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, ds: NamesDataset
) -> Path:
    out = tmp_path_factory.mktemp("bi" if request.param else "uni")
    return _export(out, ds.languages, bidirectional=request.param)


def _names(ds: NamesDataset, trainer: NumpyTrainer, n: int) -> tuple[np.ndarray, np.ndarray]:
    rows = np.random.default_rng(0).choice(len(ds), n, replace=False)
    sub = ds.subset(rows)
    return trainer.manifest.vocab.encode(list(sub.names)), labels_for_model(
        sub, trainer.manifest.languages
    )


def _start(trainer: OnDeviceTrainer) -> np.ndarray:
    """The exported weights, nudged so that every bias (zero at init) acts from the first step."""
    flat = trainer.flat_weights()
    return flat + np.random.default_rng(1).normal(0, 0.1, flat.shape).astype(np.float32)


@pytest.mark.parametrize(
    ("epochs", "max_steps", "weighted"),
    [(3, 10, False), (3, None, True)],
    ids=["cap-10-steps", "3-epochs-sample-weights"],
)
def test_ten_sgd_steps_match_train_tflite(
    model_dir: Path, ds: NamesDataset, epochs: int, max_steps: int | None, weighted: bool
) -> None:
    """100 names in batches of 32: every 4th batch holds 4 names and 28 padding rows.

    The cap stops 10 steps in, mid-epoch (epochs of 4, 4 and 2 steps); uncapped, 3 epochs are
    12 steps, with per-name weights as class weighting would give.
    """
    tfl, npy = OnDeviceTrainer(model_dir), NumpyTrainer(model_dir)
    ids, labels = _names(ds, npy, 100)
    sample = np.random.default_rng(3).uniform(0.2, 2.0, len(ids)).astype(np.float32)
    sample_weights = sample if weighted else None
    start = _start(tfl)
    tfl.set_weights(start)
    npy.set_weights(start)
    np.testing.assert_allclose(npy.logits(ids), tfl.logits(ids), atol=1e-5)
    steps: list[int] = []
    real = npy.train_step

    def counted(x: np.ndarray, y: np.ndarray, w: np.ndarray, lr: float) -> float:
        steps.append(int((w > 0).sum()))
        return real(x, y, w, lr)

    npy.train_step = counted  # type: ignore[method-assign]
    args = (ids, labels, epochs, 0.5, sample_weights, max_steps)
    tfl_losses = tfl.train_epochs(*args[:4], np.random.default_rng(2), *args[4:])
    npy_losses = npy.train_epochs(*args[:4], np.random.default_rng(2), *args[4:])
    assert steps == ([32, 32, 32, 4] * 3)[: max_steps or 12]
    np.testing.assert_allclose(npy_losses, tfl_losses, rtol=1e-5)
    after_tfl, after_npy = tfl.flat_weights(), npy.flat_weights()
    assert after_npy.dtype == np.float32
    gap = float(np.abs(after_npy - after_tfl).max())
    print(f"{model_dir.name} {len(steps)} steps: max |dw| numpy vs train.tflite = {gap:.3g}")
    assert gap < TOLERANCE
    # Every tensor trained, so the comparison means something.
    moved = [
        float(np.abs(a - b).max())
        for a, b in zip(tfl.weights(), unflatten_weights(npy.manifest.weights, start), strict=True)
    ]
    assert min(moved) > 1e-3, moved


def test_saturated_gates_tie_at_the_max_and_share_its_gradient_as_train_tflite_does(
    model_dir: Path,
) -> None:
    """Large weights saturate tanh, so many hidden units reach exactly 1.0 at several steps:
    the max's gradient is split among those ties, as TensorFlow's reduce_max gradient does."""
    from edge.numpy_trainer import gru_max_forward

    tfl, npy = OnDeviceTrainer(model_dir), NumpyTrainer(model_dir)
    rng = np.random.default_rng(5)
    start = unflatten_weights(npy.manifest.weights, _start(tfl))
    start[0], start[1] = start[0] * 30, start[1] * 30  # embeddings and forward kernel
    tfl.set_weights(start)
    npy.set_weights(start)
    x = rng.integers(1, npy.cfg.vocab_size, (32, npy.max_len)).astype(np.int32)
    x[:, :6] = 0  # left padding
    y = rng.integers(0, npy.cfg.num_classes, 32).astype(np.int32)
    w = np.ones(32, np.float32)
    with np.errstate(over="ignore"):
        tape = gru_max_forward(start[0][x], start[1], start[2], start[3], False)
    ties = (np.stack(tape.states, axis=1) == tape.pooled[:, None]).sum(axis=1) > 1
    assert ties.mean() > 0.2, ties.mean()
    for _ in range(10):
        assert npy.train_step(x, y, w, 0.5) == pytest.approx(tfl.train_step(x, y, w, 0.5), 1e-5)
    gap = float(np.abs(npy.flat_weights() - tfl.flat_weights()).max())
    print(f"{model_dir.name} saturated, 10 steps: max |dw| = {gap:.3g}")
    assert gap < TOLERANCE


def test_gradients_are_float32_and_padding_rows_do_not_count(
    model_dir: Path, ds: NamesDataset
) -> None:
    npy = NumpyTrainer(model_dir)
    ids, labels = _names(ds, npy, 32)
    npy.set_weights(_start(OnDeviceTrainer(model_dir)))
    w = np.ones(32, np.float32)
    w[-5:] = 0.0
    loss, grads = npy.gradients(ids, labels, w)
    assert all(g.dtype == np.float32 for g in grads)
    other = ids.copy()
    other[-5:] = np.random.default_rng(4).integers(0, npy.cfg.vocab_size, (5, npy.max_len))
    other_labels = labels.copy()
    other_labels[-5:] = (labels[-5:] + 1) % npy.cfg.num_classes
    loss2, grads2 = npy.gradients(other, other_labels, w)
    assert loss == pytest.approx(loss2)
    for g, g2 in zip(grads, grads2, strict=True):
        np.testing.assert_allclose(g, g2, atol=1e-7)


def test_both_trainers_offer_what_a_round_uses(model_dir: Path) -> None:
    npy, tfl = NumpyTrainer(model_dir), OnDeviceTrainer(model_dir)
    assert isinstance(npy, LocalTrainer) and isinstance(tfl, LocalTrainer)
    assert npy.batch == tfl.batch == 32 and npy.manifest == tfl.manifest
    with pytest.raises(RuntimeError, match="set_weights first"):
        npy.flat_weights()
    with pytest.raises(WeightShapeError):
        npy.set_weights(np.zeros(3, np.float32))
    npy.set_weights(tfl.weights())  # a tensor list works too
    assert np.array_equal(npy.flat_weights(), tfl.flat_weights())


_NO_RUNTIME = """
import json, sys
BLOCKED = tuple(sys.argv[2].split(","))
class _Block:
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: the numpy trainer must not need it")
sys.meta_path.insert(0, _Block())
import numpy as np
from edge.numpy_trainer import NumpyTrainer
trainer = NumpyTrainer(sys.argv[1])
rng = np.random.default_rng(0)
trainer.set_weights(rng.normal(0, 0.1, trainer.manifest.num_params).astype(np.float32))
ids = rng.integers(1, trainer.cfg.vocab_size, (40, trainer.max_len)).astype(np.int32)
labels = rng.integers(0, trainer.cfg.num_classes, 40).astype(np.int32)
losses = trainer.train_epochs(ids, labels, 2, 0.5, rng, max_steps=3)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print(json.dumps({"losses": losses, "loaded": loaded}))
"""


def test_the_numpy_trainer_needs_neither_tensorflow_nor_a_tflite_runtime(model_dir: Path) -> None:
    blocked = (*TF_MODULES, "tflite_runtime", "ai_edge_litert")
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_NO_RUNTIME), str(model_dir), ",".join(blocked)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["loaded"] == [] and len(report["losses"]) == 2  # 2 + 1 of 2 batches
    assert np.all(np.isfinite(report["losses"]))


def test_out_of_range_ids_are_refused_not_wrapped_around(model_dir: Path) -> None:
    from edge.runtime import InputShapeError

    npy = NumpyTrainer(model_dir)
    npy.set_weights(np.zeros(npy.manifest.num_params, np.float32))
    x = np.zeros((32, npy.max_len), np.int32)
    y, w = np.zeros(32, np.int32), np.ones(32, np.float32)
    for bad in (-1, npy.cfg.vocab_size):
        x[0, 0] = bad
        with pytest.raises(InputShapeError, match="ids must be in"):
            npy.train_step(x, y, w, 0.1)


# -- which trainer a Pi picks (edge.trainer_choice): a probe in a child process -------------------
def test_a_pi_picks_tflite_where_its_train_signature_works_and_agrees(model_dir: Path) -> None:
    from edge.trainer_choice import choose_trainer

    env = {k: v for k, v in os.environ.items() if k not in ("PIFED_TRAINER",)}
    choice = choose_trainer(model_dir, env)
    assert choice.name == "tflite", choice
    assert "agrees to" in choice.reason
    assert isinstance(choice.build(model_dir), OnDeviceTrainer)


def test_a_probe_that_crashes_natively_falls_back_to_numpy(model_dir: Path) -> None:
    from edge.trainer_choice import PROBE_FAULT_ENV, choose_trainer

    choice = choose_trainer(model_dir, {**os.environ, PROBE_FAULT_ENV: "1"})
    assert choice.name == "numpy" and "SIGSEGV" in choice.reason, choice
    assert isinstance(choice.build(model_dir), NumpyTrainer)


def test_the_trainer_can_be_named_and_a_wrong_name_is_refused(model_dir: Path) -> None:
    from edge.trainer_choice import TRAINER_ENV, TrainerChoiceError, choose_trainer

    assert choose_trainer(model_dir, {TRAINER_ENV: "numpy"}).name == "numpy"
    with pytest.raises(TrainerChoiceError, match="use tflite, numpy or auto"):
        choose_trainer(model_dir, {TRAINER_ENV: "gpu"})
