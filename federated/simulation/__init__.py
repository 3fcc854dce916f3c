"""The TFF simulation of a pifed fleet: rounds, on-device evaluation, the deployment gate.

What a Pi owner wants to know before touching hardware (how many rounds, which local epochs,
how much skew, what secure aggregation costs) is only worth knowing if the simulation tells the
truth about the fleet: every round's model is exported to the TFLite artifacts a Pi runs,
evaluated on every simulated device's held-out names through the edge runtime, and gated as the
coordinator gates it. FedAvg is McMahan et al. (AISTATS 2017); secure aggregation is simulated
after Bonawitz et al. (CCS 2017).

The package follows the layers of TFF's simple_fedavg example, one job per module:

- ``config``: ``SimulationConfig`` (composing the fleet's ``RoundSettings``), its error, names;
- ``data``: the pure TensorFlow layer: devices' data, their tf.data streams, the Keras model;
- ``process``: the TFF layer: weighted FedAvg and its (secure) aggregators;
- ``workers`` and ``backend``: the TFF worker processes and the execution context over them;
- ``evaluation``: export, on-device evaluation, the gate across rounds, round records;
- ``centralized``: the centralized reference (``--compare``);
- ``run``: the federated runs and ``simulate``;
- ``report``: metrics.csv, metrics.json, curves.png.

``pifed simulate`` (``pifed/commands/simulate.py``) is the command line on top.

Importing this package (or ``config``) does not import TensorFlow: ``pifed --help`` does so on a
Pi. ``data``, ``process`` and ``centralized`` import TensorFlow; import them where they run.
"""

from federated.simulation.config import (
    EVAL_KINDS,
    OPTIMIZERS,
    RUN_CENTRALIZED,
    RUN_NAMES,
    RUN_PLAIN,
    RUN_SECURE,
    SimulationConfig,
    SimulationConfigError,
)
from federated.simulation.evaluation import RoundCallback, RoundRecord, RunResult
from federated.simulation.run import SimulationResult, load_start, run_federated, simulate

__all__ = [
    "EVAL_KINDS",
    "OPTIMIZERS",
    "RUN_CENTRALIZED",
    "RUN_NAMES",
    "RUN_PLAIN",
    "RUN_SECURE",
    "RoundCallback",
    "RoundRecord",
    "RunResult",
    "SimulationConfig",
    "SimulationConfigError",
    "SimulationResult",
    "load_start",
    "run_federated",
    "simulate",
]
