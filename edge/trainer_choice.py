"""Which trainer a Pi uses: the ``train`` signature of train.tflite if it works here, else numpy.

Both trainers take the same SGD step (``edge.local_trainer``). The TFLite one is faster, but on
some Pis it may not run at all (no runtime installed that trains) or it crashes
natively (ai-edge-litert 1.4 to 2.3 segfaulted on aarch64 on the scalar rate until
``edge.trainer`` fed it as shape [1]; the next runtime may find a new way), and a segfault
cannot be caught in-process. So before the first round with a train program, the Pi
probes it in a child process: one step of each trainer from the same weights on the same batch.
The TFLite trainer is chosen only if the child exits cleanly and both steps agree; otherwise the
numpy trainer is, and the Pi says why. ``PIFED_TRAINER=tflite|numpy`` skips the probe.

The probe itself is this module run as ``python -m edge.trainer_choice MODEL_DIR``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.local_trainer import LocalTrainer
from edge.numpy_trainer import NumpyTrainer

TRAINER_ENV = "PIFED_TRAINER"
TRAINERS = ("tflite", "numpy")
# Fault injection for tests and drills: the probe kills itself with SIGSEGV, as the crash seen.
PROBE_FAULT_ENV = "PIFED_TRAINER_PROBE_FAULT"
# Steps agreeing closer than this are the same step (measured: ~1e-7 after 10 steps).
AGREEMENT = 1e-4
PROBE_TIMEOUT = 300.0


class TrainerChoiceError(ValueError):
    """``PIFED_TRAINER`` names no trainer, or insists on one that cannot run here."""


@dataclass(frozen=True)
class TrainerChoice:
    """The trainer picked for one train program, and why (reported to the coordinator)."""

    name: str
    reason: str

    def build(self, folder: str | os.PathLike[str]) -> LocalTrainer:
        """A trainer of this kind for the model folder."""
        if self.name == "numpy":
            return NumpyTrainer(folder)
        from edge.trainer import OnDeviceTrainer

        return OnDeviceTrainer(folder)


def wanted_trainer(env: dict[str, str]) -> str:
    """``PIFED_TRAINER``'s value: tflite, numpy or auto (unset); anything else is refused."""
    wanted = env.get(TRAINER_ENV, "").strip() or "auto"
    if wanted not in (*TRAINERS, "auto"):
        raise TrainerChoiceError(
            f"{TRAINER_ENV}={wanted!r}: use tflite, numpy or auto (the default)"
        )
    return wanted


def choose_trainer(
    folder: str | os.PathLike[str], env: dict[str, str] | None = None
) -> TrainerChoice:
    """Pick the trainer for the train program in ``folder`` (see the module docstring)."""
    env = dict(os.environ if env is None else env)
    wanted = wanted_trainer(env)
    if wanted != "auto":
        return TrainerChoice(wanted, f"{TRAINER_ENV}={wanted}")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "edge.trainer_choice", str(folder)],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return TrainerChoice("numpy", f"the train.tflite probe hung for {PROBE_TIMEOUT:.0f} s")
    if proc.returncode < 0:
        sig = signal.Signals(-proc.returncode).name
        return TrainerChoice("numpy", f"train.tflite crashed in a probe ({sig})")
    last = proc.stdout.strip().splitlines()[-1:] or [""]
    try:
        report = json.loads(last[0])
    except json.JSONDecodeError:
        report = {}
    if proc.returncode != 0 or not isinstance(report, dict):
        why = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return TrainerChoice("numpy", f"train.tflite cannot train here: {why}")
    diff = report.get("max_abs_diff")
    if not isinstance(diff, float) or not diff < AGREEMENT:
        return TrainerChoice("numpy", f"train.tflite's step disagrees with numpy's by {diff}")
    return TrainerChoice(
        "tflite", f"train.tflite trains here ({report.get('runtime')}; agrees to {diff:.1e})"
    )


def check_runtimes(env: dict[str, str] | None = None) -> str:
    """At start-up: can this Pi evaluate and train at all? Raises with the fix if not.

    Evaluation needs a TFLite runtime (the Pi scores the exact file it would deploy); training
    always has the numpy trainer, unless ``PIFED_TRAINER=tflite`` insists on a runtime.
    Returns a one-line summary for the log.
    """
    from edge.runtime import runtime_name

    env = dict(os.environ if env is None else env)
    wanted = wanted_trainer(env)
    inference = runtime_name("inference")  # raises RuntimeMissing naming the fix
    if wanted == "tflite":
        training = runtime_name("training")
        return f"inference on {inference}, training on {training} ({TRAINER_ENV}=tflite)"
    if wanted == "numpy":
        return f"inference on {inference}, training on numpy ({TRAINER_ENV}=numpy)"
    return f"inference on {inference}; the trainer is probed with the first train program"


def probe(folder: Path) -> dict[str, object]:
    """One SGD step of each trainer from the same weights and batch (run in a child)."""
    from edge.runtime import runtime_name
    from edge.trainer import OnDeviceTrainer

    tfl = OnDeviceTrainer(folder)
    start = tfl.flat_weights()
    rng = np.random.default_rng(0)
    start = (start + rng.normal(0, 0.05, start.shape)).astype(np.float32)
    tfl.set_weights(start)
    npt = NumpyTrainer(folder)
    npt.set_weights(start)
    m = tfl.manifest
    x = rng.integers(0, m.vocab.size, (tfl.batch, m.vocab.max_len)).astype(np.int32)
    y = rng.integers(0, len(m.languages), tfl.batch).astype(np.int32)
    w = np.ones(tfl.batch, np.float32)
    if os.environ.get(PROBE_FAULT_ENV):
        os.kill(os.getpid(), signal.SIGSEGV)
    tfl.train_step(x, y, w, 0.1)
    npt.train_step(x, y, w, 0.1)
    diff = float(np.max(np.abs(tfl.flat_weights() - npt.flat_weights())))
    return {"max_abs_diff": diff, "runtime": runtime_name("training")}


if __name__ == "__main__":
    print(json.dumps(probe(Path(sys.argv[1]))), flush=True)
