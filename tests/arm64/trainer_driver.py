"""Both trainers of a Pi, run the same way on x86 and under aarch64 emulation, for comparison.

Usage: python [-P] trainer_driver.py MODEL_DIR INPUT_NPZ OUT_DIR

INPUT_NPZ (written by the x86 test) holds ``start`` (flat float32 weights), ``x`` [steps, batch,
max_len] int32 ids, ``y`` [steps, batch] int32 labels, ``w`` [steps, batch] float32 example
weights and ``lr`` (a float32 scalar). From ``start``, each trainer takes one SGD step per batch:

- ``tflite``: ``edge.trainer.OnDeviceTrainer`` (the ``train`` signature of train.tflite, lr fed
  as shape [1]), on whichever runtime ``edge.runtime`` picks for training here; and
  ``tflite:RUNTIME`` for each installed runtime (``PIFED_TFLITE_RUNTIME``), so Bookworm's
  ai-edge-litert 1.4 trains too;
- ``numpy``: ``edge.numpy_trainer.NumpyTrainer`` (the same step in numpy).

Then ``edge.trainer_choice.choose_trainer`` runs its probe (a child process, as on a Pi) with
``PIFED_TRAINER`` unset. Writes OUT_DIR/report.json (losses, the probe's pick and reason, the
runtime, timings) and OUT_DIR/weights.npz (the final flat weights of each trainer). Standard
library, numpy and the edge set only.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path


def main() -> None:
    model_dir, input_npz, out_dir = sys.argv[1:4]
    t0 = time.perf_counter()
    import numpy as np

    from edge.numpy_trainer import NumpyTrainer
    from edge.runtime import RUNTIME_ENV, RUNTIMES, runtime_name
    from edge.trainer import OnDeviceTrainer
    from edge.trainer_choice import TRAINER_ENV, choose_trainer

    with np.load(input_npz) as f:
        data = {k: f[k] for k in f.files}
    lr = float(data["lr"])
    report: dict = {
        "platform": {
            "machine": platform.machine(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "training_runtime": runtime_name("training"),
        },
        "steps": len(data["x"]),
        "losses": {},
        "timings": {"imports": time.perf_counter() - t0},
    }
    os.environ.pop(RUNTIME_ENV, None)
    installed = [r for r in RUNTIMES if importlib.util.find_spec(r) is not None]
    report["platform"]["runtimes"] = installed
    runs: list[tuple[str, type, str | None]] = [("tflite", OnDeviceTrainer, None)]
    runs += [(f"tflite:{r}", OnDeviceTrainer, r) for r in installed]
    runs.append(("numpy", NumpyTrainer, None))
    weights = {}
    for name, cls, runtime in runs:
        t = time.perf_counter()
        if runtime is not None:
            os.environ[RUNTIME_ENV] = runtime
        trainer = cls(model_dir)
        os.environ.pop(RUNTIME_ENV, None)
        trainer.set_weights(data["start"].astype(np.float32))
        losses = [
            trainer.train_step(x, y, w, lr)
            for x, y, w in zip(data["x"], data["y"], data["w"], strict=True)
        ]
        weights[name] = trainer.flat_weights()
        report["losses"][name] = losses
        report["timings"][name] = time.perf_counter() - t
    t = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k != TRAINER_ENV}
    choice = choose_trainer(model_dir, env)
    report["probe"] = {"trainer": choice.name, "reason": choice.reason}
    report["timings"]["probe"] = time.perf_counter() - t
    report["timings"]["total"] = time.perf_counter() - t0
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "weights.npz", **weights)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({"machine": platform.machine(), "probe": choice.name}))


if __name__ == "__main__":
    main()
