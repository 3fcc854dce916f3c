"""Training suite: the TFLite ``train`` signature against Keras ``train_on_batch``, side by side.

    uv run python -m benchmarks.suite.bench_training --run RUN --out DIR [--data DIR] [--quick]

- Step time at the artifact's fixed batch (32), on the same weights: TFLite at 1, 2 and 4
  threads (capped at the core count) through ``edge.trainer.OnDeviceTrainer`` (what a Pi runs),
  Keras ``train_on_batch`` with plain SGD at the same learning rate and TensorFlow's default
  threading, interleaved. The headline pits TFLite at 1 thread against Keras on every core.
- The same at one thread each (``same_threads``): Keras pinned to 1 thread against TFLite at 1
  thread, interleaved in a process of their own (TensorFlow fixes its pools at start-up). This
  separates "slower per core" from "uses fewer cores".
- One local epoch on one Pi's share of the data: the run's training names (rebuilt from its
  recorded seed and fractions) dealt to 2 devices by ``model.partition`` (iid); device 0's
  training rows, in batches of 32, by both trainers in alternation.

Keras ``train_on_batch`` applies the model's dropout (training=True), the TFLite step does not
(it is exported with training=False); that is the only difference in the work done.

Importing this module does not import TensorFlow: the edge suite reuses ``measure_tflite_step``
and ``local_share``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.suite.contract import module_command, module_env, suite_parser, write_section
from benchmarks.suite.interleaved_timing import Contestant, summary, time_interleaved
from edge.evaluate import labels_for_model
from edge.numpy_trainer import NumpyTrainer
from edge.trainer import OnDeviceTrainer
from model.dataset import load_names, resolve_data_dir
from model.partition import partition
from model.split import split_by_name

# 1, 2 and 4 threads, capped at the core count: oversubscribed TFLite training threads spin
# (a 4-thread step on 2 busy cores measured ~100x slower), which says nothing about a Pi.
THREADS = tuple(t for t in (1, 2, 4) if t <= max(1, os.cpu_count() or 1))
HEADLINE_THREADS = 1
LEARNING_RATE = 0.05
N_DEVICES = 2
SCHEME = "iid"
# (rounds, TFLite block, Keras block) for step timing; epochs timed per trainer.
FULL_STEPS, QUICK_STEPS = (15, 6, 6), (3, 3, 3)
FULL_EPOCHS, QUICK_EPOCHS = 3, 1
# Quick mode times an epoch over the first names of the share only (tests, not figures).
QUICK_SHARE_NAMES = 256


class SplitMismatch(RuntimeError):
    """The data given does not rebuild the run's split (another data set or seed)."""


def step_batches(
    ids: np.ndarray, labels: np.ndarray, batch: int, count: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``count`` random full batches (ids, labels, unit weights) drawn from the given names."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        sel = rng.choice(len(ids), batch, replace=len(ids) < batch)
        out.append((ids[sel], labels[sel].astype(np.int32), np.ones(batch, np.float32)))
    return out


def tflite_step_contestants(
    model_dir: Path,
    batches: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    block: int,
    threads: tuple[int, ...] = THREADS,
) -> list[Contestant]:
    """One OnDeviceTrainer per thread count, each stepping through the same batches."""
    out = []
    for t in threads:
        trainer = OnDeviceTrainer(model_dir, num_threads=t)
        it = iter(_forever(batches))

        def step(trainer: OnDeviceTrainer = trainer, it: Any = it) -> float:
            x, y, w = next(it)
            return trainer.train_step(x, y, w, LEARNING_RATE)

        out.append(Contestant(f"tflite@{t}", step, block))
    return out


def numpy_step_contestant(
    model_dir: Path,
    reference: OnDeviceTrainer,
    batches: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    block: int,
) -> Contestant:
    """The numpy trainer stepping through the same batches from the TFLite trainer's weights."""
    trainer = NumpyTrainer(model_dir)
    trainer.set_weights(reference.flat_weights())
    it = iter(_forever(batches))

    def step() -> float:
        x, y, w = next(it)
        return trainer.train_step(x, y, w, LEARNING_RATE)

    return Contestant("numpy", step, block)


def _forever(items: list[Any]) -> Any:
    while True:
        yield from items


def step_figures(
    times: dict[str, np.ndarray], threads: tuple[int, ...] = THREADS
) -> dict[str, Any]:
    """TFLite step p50/p99 per thread count, in milliseconds."""
    by = {}
    for t in threads:
        s = summary(times[f"tflite@{t}"])
        by[str(t)] = {"p50_ms": s["p50_us"] / 1e3, "p99_ms": s["p99_us"] / 1e3, "steps": s["calls"]}
    return by


def measure_tflite_step(run: Path, quick: bool, seed: int) -> dict[str, Any]:
    """TFLite train-step time alone (the edge suite: no Keras on a Pi)."""
    trainer = OnDeviceTrainer(run / "model")
    ds = load_names(run / "test_names")
    ids = trainer.manifest.vocab.encode(list(ds.names))
    labels = labels_for_model(ds, trainer.manifest.languages)
    rounds, block, _ = QUICK_STEPS if quick else FULL_STEPS
    batches = step_batches(ids, labels, trainer.batch, 16, seed)
    cpu: dict[str, list[float]] = {}
    contestants = tflite_step_contestants(run / "model", batches, block)
    times = time_interleaved(contestants, rounds, seed, cpu)
    by = step_figures(times)
    for t in THREADS:
        by[str(t)]["cpu_ms"] = float(np.median(cpu[f"tflite@{t}"])) * 1e3
    return {
        "batch": trainer.batch,
        "threads": list(THREADS),
        "headline_threads": HEADLINE_THREADS,
        "tflite_step_p50_ms": by[str(HEADLINE_THREADS)]["p50_ms"],
        "tflite_step_p99_ms": by[str(HEADLINE_THREADS)]["p99_ms"],
        "tflite_by_threads": by,
        "names_source": "RUN/test_names (timing only; the weights are not kept)",
    }


def local_share(run: Path, data: str | None, seed: int) -> tuple[list[str], np.ndarray]:
    """Device 0's training names when the run's training split is dealt to 2 devices.

    The split is rebuilt exactly as ``pifed train`` made it (its seed and fractions are in
    metrics.json) and checked against the recorded sizes, so the share is a real Pi's share.
    """
    metrics = json.loads((run / "metrics.json").read_text())
    cfg = metrics["train_config"]
    ds = load_names(resolve_data_dir(data))
    train_all, test = split_by_name(ds, cfg["test_frac"], cfg["seed"])
    train, _val = split_by_name(ds, cfg["val_frac"], cfg["seed"] + 1, idx=train_all)
    if len(test) != metrics["data"]["test"] or len(train) != metrics["data"]["train"]:
        raise SplitMismatch(
            f"--data gives {len(train)} train / {len(test)} test rows but the run recorded "
            f"{metrics['data']['train']} / {metrics['data']['test']}: pass the data set the run "
            "was trained on"
        )
    share = partition(ds, train, N_DEVICES, SCHEME, seed)[0].train
    manifest_langs = tuple(json.loads((run / "model" / "manifest.json").read_text())["languages"])
    if manifest_langs != ds.languages:
        raise SplitMismatch("the data's languages differ from the model's")
    return [ds.names[int(i)] for i in share], ds.labels[share].astype(np.int32)


def time_epochs(epoch_fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Wall seconds of each epoch function, alternating between them ``repeats`` times."""
    out: dict[str, list[float]] = {k: [] for k in epoch_fns}
    for _ in range(repeats):
        for name, fn in epoch_fns.items():
            t0 = time.perf_counter()
            fn()
            out[name].append(time.perf_counter() - t0)
    return out


def tflite_epoch_fn(run: Path, ids: np.ndarray, labels: np.ndarray, seed: int) -> Callable[[], Any]:
    """One shuffled epoch through ``OnDeviceTrainer.train_epochs`` (1 thread), weights reset."""
    trainer = OnDeviceTrainer(run / "model", num_threads=HEADLINE_THREADS)
    initial = trainer.weights()
    rng = np.random.default_rng(seed)

    def epoch() -> list[float]:
        trainer.set_weights(initial)
        return trainer.train_epochs(ids, labels, 1, LEARNING_RATE, rng)

    return epoch


def keras_and_tflite_steps(
    run: Path, quick: bool, seed: int, tf_threads: int | None
) -> tuple[dict[str, Any], Any, OnDeviceTrainer]:
    """Keras ``train_on_batch`` and the TFLite step, interleaved on the same batches.

    ``tf_threads`` pins TensorFlow's intra- and inter-op pools (it must run before any op);
    with it, only TFLite at the same thread count is timed: the per-core comparison. Returns
    the step figures, the compiled Keras model and a trainer, for the epoch measurement.
    """
    import tensorflow as tf

    if tf_threads:
        tf.config.threading.set_intra_op_parallelism_threads(tf_threads)
        tf.config.threading.set_inter_op_parallelism_threads(tf_threads)
    from model.gru import load_classifier

    model = load_classifier(run / "model" / "keras_model.keras")
    model.compile(
        optimizer=tf.keras.optimizers.SGD(LEARNING_RATE),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    trainer = OnDeviceTrainer(run / "model")
    ds = load_names(run / "test_names")
    ids = trainer.manifest.vocab.encode(list(ds.names))
    labels = labels_for_model(ds, trainer.manifest.languages)
    batches = step_batches(ids, labels, trainer.batch, 16, seed)
    keras_it = iter(_forever(batches))

    def keras_step() -> object:
        x, y, w = next(keras_it)
        return model.train_on_batch(x, y, sample_weight=w)

    rounds, block, kblock = QUICK_STEPS if quick else FULL_STEPS
    threads = (tf_threads,) if tf_threads else THREADS
    contestants = tflite_step_contestants(run / "model", batches, block, threads)
    contestants.append(Contestant("keras", keras_step, kblock))
    if not tf_threads:
        # The numpy trainer a Pi falls back to (edge/trainer_choice.py), on the same batches
        # from the same weights: what that fallback costs per step.
        contestants.append(numpy_step_contestant(run / "model", trainer, batches, block))
    cpu: dict[str, list[float]] = {}
    times = time_interleaved(contestants, rounds, seed, cpu)
    by = step_figures(times, threads)
    for t in threads:
        by[str(t)]["cpu_ms"] = float(np.median(cpu[f"tflite@{t}"])) * 1e3
    k = summary(times["keras"])
    keras_cpu_ms = float(np.median(cpu["keras"])) * 1e3
    head = str(tf_threads or HEADLINE_THREADS)
    numpy_figures: dict[str, Any] = {}
    if "numpy" in times:
        n = summary(times["numpy"])
        numpy_figures = {
            "numpy_step_p50_ms": n["p50_us"] / 1e3,
            "numpy_step_p99_ms": n["p99_us"] / 1e3,
            "numpy_cpu_ms": float(np.median(cpu["numpy"])) * 1e3,
            "numpy_over_tflite_step": n["p50_us"] / 1e3 / by[head]["p50_ms"],
        }
    figures = {
        "batch": trainer.batch,
        "threads": list(threads),
        "headline_threads": int(head),
        "tflite_step_p50_ms": by[head]["p50_ms"],
        "tflite_step_p99_ms": by[head]["p99_ms"],
        "tflite_by_threads": by,
        "keras_step_p50_ms": k["p50_us"] / 1e3,
        "keras_step_p99_ms": k["p99_us"] / 1e3,
        "keras_steps": k["calls"],
        "keras_threads": tf_threads or "tf_default",
        "keras_over_tflite_step": k["p50_us"] / 1e3 / by[head]["p50_ms"],
        # CPU seconds per step, all threads: the work done, which a busy machine does not
        # inflate the way it inflates wall time.
        "keras_cpu_ms": keras_cpu_ms,
        "tflite_cpu_ms": by[head]["cpu_ms"],
        "keras_over_tflite_cpu": keras_cpu_ms / by[head]["cpu_ms"],
        **numpy_figures,
    }
    return figures, model, trainer


def gru_alone_step_ratio(run: Path, quick: bool, seed: int) -> dict[str, Any]:
    """The run's train step against the same model without its n-gram bag (the GRU alone,
    the default before issue 21), both TFLite at 1 thread, interleaved on the same batches.

    The GRU-alone artifact is exported here from the run's model config with
    ``ngram_buckets=0`` (fresh weights: the step's work does not depend on their values).
    """
    import tempfile

    import tensorflow as tf

    from federated.exporter import synthetic_calibration
    from model.config import ModelConfig
    from model.export import export_artifacts
    from model.gru import build_classifier

    manifest = json.loads((run / "model" / "manifest.json").read_text())
    cfg = ModelConfig(**{**manifest["model_config"], "ngram_buckets": 0})
    trainer = OnDeviceTrainer(run / "model")
    ds = load_names(run / "test_names")
    ids = trainer.manifest.vocab.encode(list(ds.names))
    labels = labels_for_model(ds, trainer.manifest.languages)
    batches = step_batches(ids, labels, trainer.batch, 16, seed)
    rounds, block, _ = QUICK_STEPS if quick else FULL_STEPS
    with tempfile.TemporaryDirectory() as tmp:
        tf.keras.utils.set_random_seed(seed)
        vocab = trainer.manifest.vocab
        export_artifacts(
            build_classifier(cfg),
            cfg,
            vocab,
            trainer.manifest.languages,
            synthetic_calibration(vocab),
            tmp,
            kinds=("train",),
        )
        ours = tflite_step_contestants(run / "model", batches, block, (HEADLINE_THREADS,))[0]
        alone = tflite_step_contestants(Path(tmp), batches, block, (HEADLINE_THREADS,))[0]
        alone = Contestant("gru_alone", alone.call, block)
        times = time_interleaved([ours, alone], rounds, seed)
    o, a = summary(times[ours.name]), summary(times["gru_alone"])
    return {
        "threads": HEADLINE_THREADS,
        "step_p50_ms": o["p50_us"] / 1e3,
        "gru_alone_step_p50_ms": a["p50_us"] / 1e3,
        "over_gru_alone": o["p50_us"] / a["p50_us"],
    }


def same_threads_child(run: Path, quick: bool, seed: int) -> dict[str, Any]:
    """Keras pinned to 1 thread against TFLite at 1 thread, in a process of their own.

    TensorFlow's thread pools are fixed once it starts, so the per-core comparison needs its
    own process; inside it the two are still interleaved side by side.
    """
    cmd = module_command("bench_training", "same-threads", str(run), str(seed))
    proc = subprocess.run(
        [*cmd, *(["--quick"] if quick else [])],
        capture_output=True,
        text=True,
        timeout=1800,
        env=module_env(),
    )
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-800:]}"}
    figures: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return figures


def main(argv: list[str] | None = None) -> int:
    """Keras and TFLite training side by side; write training.json."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["same-threads"]:
        figures, _, _ = keras_and_tflite_steps(Path(argv[1]), "--quick" in argv, int(argv[2]), 1)
        print(json.dumps(figures))
        return 0
    args = suite_parser(__doc__).parse_args(argv)
    run: Path = args.run
    steps, model, trainer = keras_and_tflite_steps(run, args.quick, args.seed, None)
    steps["keras_note"] = "train_on_batch, SGD, TensorFlow default threads, dropout active"
    same = same_threads_child(run, args.quick, args.seed)
    steps["same_threads"] = same
    if json.loads((run / "model" / "manifest.json").read_text())["model_config"].get(
        "ngram_buckets"
    ):
        steps["vs_gru_alone"] = gru_alone_step_ratio(run, args.quick, args.seed)

    share_names, share_labels = local_share(run, args.data, args.seed)
    if args.quick:
        share_names, share_labels = (
            share_names[:QUICK_SHARE_NAMES],
            share_labels[:QUICK_SHARE_NAMES],
        )
    share_ids = trainer.manifest.vocab.encode(share_names)
    b = trainer.batch
    pad = (-len(share_ids)) % b
    kx = np.concatenate([share_ids, np.zeros((pad, share_ids.shape[1]), np.int32)])
    ky = np.concatenate([share_labels, np.zeros(pad, np.int32)])
    kw = np.concatenate([np.ones(len(share_ids), np.float32), np.zeros(pad, np.float32)])
    initial = model.get_weights()
    rng = np.random.default_rng(args.seed)

    def keras_epoch() -> None:
        model.set_weights(initial)
        order = rng.permutation(len(kx))
        for s in range(0, len(kx), b):
            sel = order[s : s + b]
            model.train_on_batch(kx[sel], ky[sel], sample_weight=kw[sel])

    epochs = time_epochs(
        {
            "tflite": tflite_epoch_fn(run, share_ids, share_labels, args.seed),
            "keras": keras_epoch,
        },
        QUICK_EPOCHS if args.quick else FULL_EPOCHS,
    )
    tfl_s, ker_s = float(np.median(epochs["tflite"])), float(np.median(epochs["keras"]))
    section = {
        "step": steps,
        "local_epoch": {
            "devices": N_DEVICES,
            "scheme": SCHEME,
            "device": 0,
            "names": len(share_ids),
            "share_truncated": bool(args.quick),
            "steps": -(-len(share_ids) // b),
            "repeats": len(epochs["tflite"]),
            "tflite_s": tfl_s,
            "keras_s": ker_s,
            "keras_over_tflite": ker_s / tfl_s,
            "tflite_threads": HEADLINE_THREADS,
        },
        "learning_rate": LEARNING_RATE,
    }
    write_section(args.out, "training", section)
    print(f"training: batch {b}, step p50 (TFLite at {HEADLINE_THREADS} thread vs Keras)")
    for t, f in steps["tflite_by_threads"].items():
        print(f"  TFLite {t} thr: {f['p50_ms']:.2f} ms (p99 {f['p99_ms']:.2f})")
    print(
        f"  Keras train_on_batch (TF default threads): {steps['keras_step_p50_ms']:.2f} ms "
        f"(p99 {steps['keras_step_p99_ms']:.2f})"
    )
    print(f"  Keras / TFLite step: {steps['keras_over_tflite_step']:.2f}x")
    print(
        f"  CPU per step (all threads): Keras {steps['keras_cpu_ms']:.2f} ms, TFLite "
        f"{steps['tflite_cpu_ms']:.2f} ms ({steps['keras_over_tflite_cpu']:.2f}x)"
    )
    if "error" in same:
        print(f"  same-thread comparison failed: {same['error']}")
    else:
        print(
            f"  both at 1 thread (own process): Keras {same['keras_step_p50_ms']:.2f} ms, "
            f"TFLite {same['tflite_step_p50_ms']:.2f} ms ({same['keras_over_tflite_step']:.2f}x)"
        )
    if "vs_gru_alone" in steps:
        g = steps["vs_gru_alone"]
        print(
            f"  with vs without the n-gram bag (TFLite, 1 thread, same batches): "
            f"{g['step_p50_ms']:.2f} ms vs {g['gru_alone_step_p50_ms']:.2f} ms "
            f"({g['over_gru_alone']:.2f}x, bound 2x)"
        )
    print(
        f"  one local epoch, device 0 of {N_DEVICES} ({len(share_ids)} names): "
        f"TFLite {tfl_s:.2f} s, Keras {ker_s:.2f} s ({ker_s / tfl_s:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
