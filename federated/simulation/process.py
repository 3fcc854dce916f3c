"""The federated orchestration of the simulation: weighted FedAvg through ``tff.learning``.

This is the ``*_tff.py`` layer of TFF's simple_fedavg example (``data`` is the ``*_tf.py`` one,
``pifed simulate`` the ``*_main.py`` one). FedAvg is McMahan et al.,
"Communication-Efficient Learning of Deep Networks from Decentralized Data" (AISTATS 2017);
the secure-aggregation model aggregator simulates Bonawitz et al., "Practical Secure
Aggregation for Privacy-Preserving Machine Learning" (CCS 2017) through
``tff.federated_secure_sum_bitwidth``.

Aggregators (``model_aggregator``):

- plain: TFF's default weighted mean of client updates (weights: examples trained on).
- secure, adaptive (``clip=None``, the default): ``tff.learning.secure_aggregator(zeroing=True,
  clipping=True)`` with TFF 0.87's defaults, all estimated under secure aggregation:

  * zeroing: an update whose largest absolute coordinate (L-infinity norm) exceeds an adaptive
    bound is replaced by zeros. The bound starts at 10.0 and tracks 2x the 0.98 quantile of
    those norms, plus 1.0, with learning rate ln 10 (it adapts within a few rounds).
  * clipping: updates are clipped to an adaptive L2 norm that starts at 1.0 and tracks the
    0.8 quantile of update norms, learning rate 0.2.
  * secure sum: each weighted update coordinate is clipped to an adaptive range that starts at
    +-50.0 and tracks 2x the 0.95 quantile, then quantised to 32 bits and summed; the weights
    (examples per client) are summed securely in [0, 2**20 - 1].

- secure, fixed (``clip=C``): the same adaptive zeroing, a fixed L2 clip at ``C``, and a secure
  sum whose range is exactly what the clip allows: +-C times the largest client weight, so the
  secure sum itself never clips (only quantisation remains).
- secure, per coordinate (``coordinate_clip=B``), what the fleet's SecAgg quantiser does
  (``edge/secagg/quantize.py``): no zeroing and no L2 clip; the secure sum clips each weighted
  coordinate to +-B times the largest client weight W, quantises to 32 bits and sums. For a
  client of weight W that is exactly the fleet's ``w * clip(x, +-B)``; a lighter client is
  clipped at +-B*W/w, more loosely than on the fleet.

The test execution context (``federated.simulation.backend``) rewrites secure sums into clipped,
quantised plain sums: the simulation measures what secure aggregation costs in accuracy; it is
not the cryptography (that is ``edge/secagg`` and ``federated/secagg_server.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from federated.simulation.config import OPTIMIZERS
from federated.simulation.data import build_model, input_spec, keras_loss
from model.config import ModelConfig

# The weight sum of the secure aggregator is bounded by TFF at 2**20 - 1 examples per round.
MAX_SECURE_WEIGHT_SUM = 2**20 - 1


class SimulationSetupError(ValueError):
    """The federated process cannot be built as configured."""


def build_optimizer(
    kind: str, learning_rate: float, momentum: float = 0.0
) -> tff.learning.optimizers.Optimizer:
    """A TFF optimizer by name: ``sgd`` (plain, as ``train.tflite`` applies it) or ``adam``.

    ``momentum`` > 0 makes ``sgd`` heavy-ball SGD: as the server optimizer, that is FedAvgM.
    """
    if kind == "sgd":
        return tff.learning.optimizers.build_sgdm(
            learning_rate=learning_rate, momentum=momentum or None
        )
    if kind == "adam":
        return tff.learning.optimizers.build_adam(learning_rate=learning_rate)
    raise SimulationSetupError(f"unknown optimizer {kind!r}; choose one of {', '.join(OPTIMIZERS)}")


def _secure_mean(bound: float) -> tff.aggregators.WeightedAggregationFactory:
    """Weighted mean whose weighted values are secure-summed, each coordinate clipped to +-bound."""
    return tff.aggregators.MeanFactory(
        value_sum_factory=tff.aggregators.SecureSumFactory(bound, -bound),
        weight_sum_factory=tff.aggregators.SecureSumFactory(
            upper_bound_threshold=float(MAX_SECURE_WEIGHT_SUM), lower_bound_threshold=0.0
        ),
    )


def model_aggregator(
    secure: bool,
    clip: float | None = None,
    max_client_weight: int = 1,
    coordinate_clip: float | None = None,
) -> tff.aggregators.WeightedAggregationFactory:
    """The model-update aggregator (see module docstring for every bound)."""
    if not secure:
        return tff.aggregators.MeanFactory()
    if clip is not None and coordinate_clip is not None:
        raise SimulationSetupError("choose one of clip (L2) and coordinate_clip, not both")
    for name, value in (("clip", clip), ("coordinate_clip", coordinate_clip)):
        if value is not None and not value > 0:
            raise SimulationSetupError(f"{name} must be > 0, got {value}")
    if max_client_weight < 1:
        raise SimulationSetupError(f"max_client_weight must be >= 1, got {max_client_weight}")
    if coordinate_clip is not None:
        return _secure_mean(float(coordinate_clip) * float(max_client_weight))
    if clip is None:
        return tff.learning.secure_aggregator(zeroing=True, clipping=True)
    mean = _secure_mean(float(clip) * float(max_client_weight))
    clipped = tff.aggregators.clipping_factory(
        float(clip),
        mean,
        clipped_count_sum_factory=tff.aggregators.SecureSumFactory(
            upper_bound_threshold=1, lower_bound_threshold=0
        ),
    )
    zeroing_norm = tff.aggregators.PrivateQuantileEstimationProcess.no_noise(
        initial_estimate=10.0,
        target_quantile=0.98,
        learning_rate=float(np.log(10.0)),
        multiplier=2.0,
        increment=1.0,
        secure_estimation=True,
    )
    return tff.aggregators.zeroing_factory(
        zeroing_norm,
        clipped,
        zeroed_count_sum_factory=tff.aggregators.SecureSumFactory(
            upper_bound_threshold=1, lower_bound_threshold=0
        ),
    )


def build_fedavg(
    model_config: ModelConfig,
    client_optimizer: tff.learning.optimizers.Optimizer,
    server_optimizer: tff.learning.optimizers.Optimizer,
    aggregator: tff.aggregators.WeightedAggregationFactory,
) -> tff.learning.templates.LearningProcess:
    """Weighted FedAvg (weights: examples each client trained on) over the pifed GRU."""

    def model_fn() -> tff.learning.models.VariableModel:
        return tff.learning.models.from_keras_model(
            build_model(model_config),
            loss=keras_loss(),
            input_spec=input_spec(model_config.max_len),
            metrics=[tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        )

    return tff.learning.algorithms.build_weighted_fed_avg(
        model_fn,
        client_optimizer_fn=client_optimizer,
        server_optimizer_fn=server_optimizer,
        client_weighting=tff.learning.ClientWeighting.NUM_EXAMPLES,
        model_aggregator=aggregator,
    )


def _field(obj: Any, name: str) -> Any:
    """Attribute or mapping access: a merged (multi-worker) context returns plain dicts."""
    if isinstance(obj, Mapping):
        return obj[name]
    return getattr(obj, name)


def state_weights(state: Any) -> list[np.ndarray]:
    """The global model's trainable weights held in a server state, as numpy arrays."""
    weights = _field(_field(state, "global_model_weights"), "trainable")
    return [np.asarray(w) for w in weights]


def with_client_lr(process: tff.learning.templates.LearningProcess, state: Any, lr: float) -> Any:
    """``state`` with its clients' learning rate set to ``lr`` (a schedule's next round).

    FedAvg keeps the client optimiser's rate in its state (``get_hparams``), so a schedule
    changes it between rounds without rebuilding the process.
    """
    hparams = process.get_hparams(state)
    work = _field(hparams, "client_work")
    if "learning_rate" not in work:
        raise SimulationSetupError(f"the client optimiser has no learning rate in {hparams}")
    work["learning_rate"] = float(lr)
    return process.set_hparams(state, hparams)


def with_weights(state: Any, trainable: Sequence[np.ndarray]) -> Any:
    """A server state whose global model is ``trainable`` (used for the seeded start)."""
    weights = _field(state, "global_model_weights")
    current = _field(weights, "trainable")
    if len(current) != len(trainable):
        raise SimulationSetupError(
            f"the model has {len(current)} weight tensors, got {len(trainable)}"
        )
    for have, new in zip(current, trainable, strict=True):
        if tuple(np.shape(have)) != tuple(np.shape(new)):
            raise SimulationSetupError(
                f"weight shape mismatch: {np.shape(have)} vs {np.shape(new)}"
            )
    new_weights = tff.learning.models.ModelWeights(
        trainable=[np.asarray(w, np.float32) for w in trainable],
        non_trainable=list(_field(weights, "non_trainable")),
    )
    if isinstance(state, Mapping):  # a merged context's state is a plain mapping
        return {**state, "global_model_weights": new_weights}
    return tff.learning.templates.LearningAlgorithmState(
        global_model_weights=new_weights,
        distributor=state.distributor,
        client_work=state.client_work,
        aggregator=state.aggregator,
        finalizer=state.finalizer,
    )


def run_round(
    process: tff.learning.templates.LearningProcess, state: Any, datasets: list[tf.data.Dataset]
) -> tuple[Any, dict[str, Any]]:
    """One FedAvg round on the sampled clients' datasets: (new state, metrics as plain dict)."""
    out = process.next(state, datasets)
    return _field(out, "state"), _to_plain(_field(out, "metrics"))


def _to_plain(value: Any) -> Any:
    """Nested metrics as dicts of Python numbers (JSON-able)."""
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if hasattr(value, "_asdict"):
        return _to_plain(value._asdict())
    arr = np.asarray(value)
    if arr.ndim == 0:
        return arr.item()
    return arr.tolist()


def train_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The round's client training loss and accuracy (means over the sampled clients' batches)."""
    train = metrics["client_work"]["train"]
    return {"loss": float(train["loss"]), "accuracy": float(train["accuracy"])}


def aggregator_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Flattened aggregator measurements (clip norms, zeroed/clipped counts, secure bounds)."""
    out: dict[str, float] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[prefix] = float(value)

    walk("", metrics.get("aggregator", {}))
    return out
