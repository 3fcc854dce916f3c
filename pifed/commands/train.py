"""``pifed train``: the centralized train -> export -> evaluate path, end to end."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from model.dataset import load_names, resolve_data_dir, write_names
from model.manifest import write_atomic
from pifed import flags


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``pifed train``."""
    tr = sub.add_parser(
        "train",
        help="centralized baseline: train, export TFLite artifacts, evaluate",
        description="Train the GRU on a name-disjoint split, export float/dynamic/int8 and the "
        "on-device training artifact, and check TFLite against Keras.",
    )
    flags.add_data(tr)
    flags.add_out(tr)
    tr.add_argument("--epochs", type=int, default=20, help="max epochs (early stopping)")
    tr.add_argument("--batch-size", type=int, default=64, help="Keras training batch size")
    tr.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    tr.add_argument("--units", type=int, default=128, help="GRU units per direction")
    tr.add_argument("--embed-dim", type=int, default=64, help="character embedding size")
    tr.add_argument("--unidirectional", action="store_true", help="one GRU direction only")
    tr.add_argument(
        "--class-weight-power",
        type=float,
        default=0.0,
        help="class weights (1/freq)**P: 0 favours accuracy, 1 balanced accuracy",
    )
    tr.add_argument(
        "--ngram-buckets",
        type=int,
        default=8192,
        help="hashed character 1-5-gram buckets added to the GRU's logits (0: GRU alone)",
    )
    tr.add_argument(
        "--no-refit",
        action="store_true",
        help="ship the model trained on the training names only, instead of training again "
        "on training + validation names once epochs and tau are chosen",
    )
    tr.add_argument(
        "--logit-adjustment",
        type=float,
        default=-1.0,
        metavar="TAU",
        help="subtract TAU*log(prior) from logits; negative: choose TAU on validation names",
    )
    flags.add_seed(tr)


def run(args: argparse.Namespace) -> int:
    """Train, export every artifact, evaluate each through edge/, write the run directory."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from edge.evaluate import evaluate_names
    from edge.runtime import Classifier, runtime_name
    from model.config import TrainConfig
    from model.export import export_artifacts
    from model.metrics import classification_metrics, confusion_matrix
    from model.report import parity, plot_confusion
    from model.train import train_centralized

    console = Console(stderr=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ds = load_names(resolve_data_dir(args.data))
    cfg = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        class_weight_power=args.class_weight_power,
        logit_adjustment=args.logit_adjustment,
        refit_on_all=not args.no_refit,
        seed=args.seed,
    )
    overrides = {
        "units": args.units,
        "embed_dim": args.embed_dim,
        "bidirectional": not args.unidirectional,
        "ngram_buckets": args.ngram_buckets,
    }
    console.print(
        f"[bold]pifed train[/]: {len(ds)} distinct (name, language) pairs, "
        f"{len(ds.languages)} languages; {cfg}"
    )
    with Progress(
        TextColumn("epoch {task.completed}/{task.total}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("train", total=cfg.epochs, status="")

        def on_epoch(epoch: int, logs: dict[str, float]) -> None:
            bar.update(
                task,
                completed=epoch,
                status=(
                    f"loss {logs['loss']:.3f}  val acc {logs['val_accuracy']:.3f}  "
                    f"val bal {logs['val_balanced_accuracy']:.3f}"
                ),
            )

        result = train_centralized(ds, cfg, overrides, on_epoch)

    model_dir = out / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    result.model.save(model_dir / "keras_model.keras")
    x_cal = result.vocab.encode([ds.names[i] for i in result.fit_rows])
    with console.status("exporting TFLite artifacts (builtins only)"):
        manifest = export_artifacts(
            result.model, result.model_config, result.vocab, ds.languages, x_cal, model_dir
        )
    with console.status("deriving the template map (a coordinator without TensorFlow)"):
        from federated.exporter import with_template_map

        manifest = with_template_map(model_dir, result.model) or manifest

    test_names = [ds.names[i] for i in result.test_rows]
    y_test = ds.labels[result.test_rows]
    write_names(ds, result.test_rows, out / "test_names")
    x_test = result.vocab.encode(test_names)
    keras_logits = result.model.predict(x_test, batch_size=1024, verbose=0)
    n_classes = len(ds.languages)
    keras_metrics = classification_metrics(y_test, np.argmax(keras_logits, 1), n_classes)
    report: dict = {
        "data": {
            "distinct_pairs": len(ds),
            "train": len(result.train_rows),
            "val": len(result.val_rows),
            "test": len(result.test_rows),
            "fit": len(result.fit_rows),
            "languages": list(ds.languages),
        },
        # Which names the figures below come from, and what the shipped model saw.
        "held_out": {
            "test_names": "test_names/ (written beside this file)",
            "test_rows": len(result.test_rows),
            "test_seen_by_shipped_model": False,
            "val_rows": len(result.val_rows),
            "val_used_for": "choosing the epoch count and tau",
            "val_seen_by_shipped_model": bool(cfg.refit_on_all),
            "shipped_model_fit_on": "train + val names" if cfg.refit_on_all else "train names",
            "best_epoch": result.best_epoch,
        },
        "train_config": cfg.to_dict(),
        "model_config": result.model_config.to_dict(),
        "params": int(result.model.count_params()),
        "train_seconds": result.seconds,
        "history": result.history,
        "runtime": runtime_name(),
        "logit_adjustment": {
            "tau": result.tau,
            "log_prior": result.log_prior,
            "validation_curve": result.tradeoff,
        },
        "keras": keras_metrics,
        "tflite": {},
    }
    for kind in ("float", "dynamic", "int8"):
        clf = Classifier(model_dir / manifest.artifacts[kind]["file"])
        m = evaluate_names(clf, test_names, y_test)
        m.update(parity(keras_logits, clf.logits(x_test)))
        m["bytes"] = manifest.artifacts[kind]["bytes"]
        report["tflite"][kind] = m
    cm = confusion_matrix(y_test, np.argmax(keras_logits, 1), n_classes)
    report["confusion_matrix"] = cm.tolist()
    plot_confusion(
        cm,
        ds.languages,
        out / "confusion_matrix.png",
        f"test split, Keras float (acc {keras_metrics['accuracy']:.3f}, "
        f"balanced {keras_metrics['balanced_accuracy']:.3f})",
    )
    write_atomic(out / "metrics.json", json.dumps(report, indent=2).encode())

    table = Table(title=f"test split: {len(test_names)} names never seen in training")
    for col in (
        "model",
        "accuracy",
        "balanced",
        "macro F1",
        "argmax agree",
        "max |Δlogit|",
        "size KB",
    ):
        table.add_column(col, justify="right")
    table.add_row(
        "keras",
        f"{keras_metrics['accuracy']:.4f}",
        f"{keras_metrics['balanced_accuracy']:.4f}",
        f"{keras_metrics['macro_f1']:.4f}",
        "-",
        "-",
        "-",
    )
    for kind, m in report["tflite"].items():
        table.add_row(
            kind,
            f"{m['accuracy']:.4f}",
            f"{m['balanced_accuracy']:.4f}",
            f"{m['macro_f1']:.4f}",
            f"{m['argmax_agreement']:.4%}",
            f"{m['max_abs_logit_diff']:.2e}",
            f"{m['bytes'] / 1024:.0f}",
        )
    Console().print(table)
    console.print(
        f"wrote {out}/metrics.json, confusion_matrix.png, model/ "
        f"(manifest.json, {', '.join(a['file'] for a in manifest.artifacts.values())})"
    )
    return 0
