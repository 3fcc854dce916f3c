"""FedAvg through tff.learning on real TFF workers: plain, secure, clipped, and split over two.

Each check compares a TFF round with something computed independently: the plain round with
FedAvg done by hand, the merged two-worker round with the single-worker round, the clipped
secure round with its clip bound.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model.dataset import load_names

pytestmark = pytest.mark.slow  # starts TensorFlow, TFF or real processes

CLIENT_LR = 0.2
UNITS, EMBED = 8, 4


@pytest.fixture(scope="module")
def setup(data_dir: Path) -> Iterator[dict[str, Any]]:
    from federated.simulation.backend import execution_backend
    from federated.simulation.data import (
        client_dataset,
        initial_weights,
        prepare_data,
        simulation_model_config,
    )

    ds = load_names(data_dir)
    data = prepare_data(ds.subset(np.arange(0, len(ds), 12)), 4, "iid", seed=0)
    cfg = simulation_model_config(data, UNITS, EMBED)
    with execution_backend() as backend:
        yield {
            "data": data,
            "cfg": cfg,
            "w0": initial_weights(cfg, 0),
            "datasets": lambda: [client_dataset(c, 1, 32, seed=11) for c in data.clients],
            "backend": backend,
        }


def _process(cfg: Any, secure: bool, clip: float | None = None, max_weight: int = 1) -> Any:
    from federated.simulation.process import build_fedavg, build_optimizer, model_aggregator

    return build_fedavg(
        cfg,
        build_optimizer("sgd", CLIENT_LR),
        build_optimizer("sgd", 1.0),
        model_aggregator(secure, clip, max_weight),
    )


def _one_round(process: Any, setup: dict[str, Any]) -> tuple[list[np.ndarray], dict[str, Any]]:
    from federated.simulation.process import run_round, state_weights, with_weights

    state = with_weights(process.initialize(), setup["w0"])
    state, metrics = run_round(process, state, setup["datasets"]())
    return state_weights(state), metrics


def _by_hand_fedavg(setup: dict[str, Any], lr: float = CLIENT_LR) -> list[np.ndarray]:
    """Each client: plain SGD over its batches from w0; server: mean weighted by examples."""
    import tensorflow as tf

    from federated.simulation.data import build_model, keras_loss

    loss_fn = keras_loss()
    updates, weights = [], []
    for ds in setup["datasets"]():
        model = build_model(setup["cfg"], setup["w0"])
        n = 0
        for x, y in ds:
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            for v, g in zip(model.trainable_variables, grads, strict=True):
                v.assign_sub(lr * tf.convert_to_tensor(g))
            n += int(x.shape[0])
        updates.append([v.numpy() for v in model.trainable_variables])
        weights.append(n)
    total = float(sum(weights))
    return [
        sum(w / total * u[i] for w, u in zip(weights, updates, strict=True))
        for i in range(len(setup["w0"]))
    ]


def _max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def plain_round(setup: dict[str, Any]) -> tuple[Any, list[np.ndarray], dict[str, Any]]:
    process = _process(setup["cfg"], secure=False)
    weights, metrics = _one_round(process, setup)
    return process, weights, metrics


def test_plain_round_is_fedavg_weighted_by_examples(
    setup: dict[str, Any], plain_round: tuple[Any, list[np.ndarray], dict[str, Any]]
) -> None:
    from federated.simulation.process import train_metrics

    _, weights, metrics = plain_round
    assert _max_diff(weights, setup["w0"]) > 1e-3, "the round did not train"
    assert _max_diff(weights, _by_hand_fedavg(setup)) < 1e-4
    m = train_metrics(metrics)
    assert 0.0 < m["accuracy"] <= 1.0 and m["loss"] > 0


def test_a_scheduled_client_rate_is_the_rate_the_next_round_trains_at(
    setup: dict[str, Any], plain_round: tuple[Any, list[np.ndarray], dict[str, Any]]
) -> None:
    # What a --client-lr-schedule does between rounds: the same process, a new client rate.
    from federated.simulation.process import run_round, state_weights, with_client_lr, with_weights

    process, at_base, _ = plain_round
    state = with_weights(process.initialize(), setup["w0"])
    state = with_client_lr(process, state, CLIENT_LR / 4)
    state, _ = run_round(process, state, setup["datasets"]())
    weights = state_weights(state)
    assert _max_diff(weights, _by_hand_fedavg(setup, CLIENT_LR / 4)) < 1e-4
    assert _max_diff(weights, at_base) > 1e-3


def test_server_momentum_is_heavy_ball_sgd_on_the_mean_update() -> None:
    """FedAvgM: with the same mean update twice, the second server step is (1 + beta) times."""
    import tensorflow as tf

    from federated.simulation.process import build_optimizer

    beta, lr = 0.9, 1.0
    w = [tf.constant([1.0, -2.0])]
    # TFF's server optimizer takes the negated mean update as its gradient.
    g = [tf.constant([0.5, 0.25])]
    plain, heavy = build_optimizer("sgd", lr), build_optimizer("sgd", lr, beta)
    for opt, factor in ((plain, 1.0), (heavy, 1.0 + beta)):
        state = opt.initialize([tf.TensorSpec([2], tf.float32)])
        state, w1 = opt.next(state, w, g)
        state, w2 = opt.next(state, w1, g)
        first, second = np.asarray(w[0] - w1[0]), np.asarray(w1[0] - w2[0])
        np.testing.assert_allclose(first, lr * np.asarray(g[0]), rtol=1e-6)
        np.testing.assert_allclose(second, factor * first, rtol=1e-6)


def test_secure_round_with_a_tight_clip_moves_the_model_at_most_the_clip(
    setup: dict[str, Any],
) -> None:
    from federated.simulation.process import aggregator_metrics

    clip = 1e-3
    max_w = max(c.num_train for c in setup["data"].clients)
    weights, metrics = _one_round(_process(setup["cfg"], True, clip, max_w), setup)
    step = np.sqrt(
        sum(float(np.sum((w - w0) ** 2)) for w, w0 in zip(weights, setup["w0"], strict=True))
    )
    # The mean of updates each clipped to L2 <= clip has L2 <= clip (+ quantisation error).
    assert 0 < step <= clip * 1.01
    agg = aggregator_metrics(metrics)
    assert agg["zeroing.clipping_norm"] == pytest.approx(clip)
    assert agg["zeroing.clipped_count"] == len(setup["data"].clients)


def test_secure_adaptive_round_single_and_two_merged_workers_agree(
    setup: dict[str, Any], tmp_path: Path
) -> None:
    from federated.simulation.backend import execution_backend
    from federated.simulation.process import aggregator_metrics
    from federated.simulation.workers import WorkerProcess

    process = _process(setup["cfg"], secure=True)
    local, metrics = _one_round(process, setup)
    agg = aggregator_metrics(metrics)
    for key in ("zeroed_count", "zeroing.clipping_norm", "zeroing.clipped_count"):
        assert key in agg, sorted(agg)
    assert _max_diff(local, setup["w0"]) > 0

    with (
        WorkerProcess(log_path=tmp_path / "w1.log") as w1,
        WorkerProcess(log_path=tmp_path / "w2.log") as w2,
    ):
        with execution_backend([w1.address, w2.address]) as backend:
            assert backend.merged and len(backend.workers) == 2
            merged, merged_metrics = _one_round(process, setup)
        pids = (w1.pid, w2.pid)
        assert all(pid is not None for pid in pids)
    # Secure sums are quantised per merge group, hence the small tolerance.
    assert _max_diff(merged, local) < 1e-4
    assert (
        aggregator_metrics(merged_metrics)["zeroing.clipped_count"] == agg["zeroing.clipped_count"]
    )
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
