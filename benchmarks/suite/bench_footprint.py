"""Footprint suite: what an edge client costs in memory, start-up and disk, against TensorFlow.

    uv run python -m benchmarks.suite.bench_footprint --run RUN --out DIR [--quick]

Clients, each a fresh process doing the same work -- load the int8 model and the train
artifact, evaluate on RUN/test_names, train one step -- run in alternation:

- ``edge``: ``edge.runtime`` / ``edge.trainer`` / ``edge.evaluate`` on tflite-runtime. The
  process blocks TensorFlow imports and asserts at the end that none was loaded.
- ``tensorflow_tflite``: the same edge code with ``tf.lite.Interpreter`` substituted for the
  runtime's interpreter (the same artifacts, the same calls; only the runtime differs).
- ``tensorflow_keras``: what a client without TFLite would do: load the Keras model, predict,
  ``train_on_batch`` one step.
- ``bare_python``: an interpreter that imports nothing, the floor under every figure.

Peak RSS is the child's own high-water mark, ``VmHWM`` from /proc/self/status read just before
it exits. ``ru_maxrss`` from ``os.wait4`` (per child, unlike ``RUSAGE_CHILDREN``, which is a
maximum over all children so far) is kept beside it and used where /proc is missing; on Linux it
is inflated, because a child's ru_maxrss starts from its parent's RSS at fork (the kernel keeps
the pre-exec high-water mark across exec), which made a bare interpreter spawned from a 80 MB
process report 80 MB. Import time is measured inside the child around its imports.

Installed size: the RECORD files of every installed distribution, summed per set: the edge set
(numpy, tflite-runtime, pycryptodome, grpcio, protobuf, pifed and everything they require) against
everything in this environment, and against the coordinator set (pifed[full]'s closure).

This module imports only the standard library at top level: its client mode must not charge
numpy or TensorFlow to the bare interpreter.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.suite.contract import (
    module_command,
    module_env,
    suite_parser,
    tf_modules_loaded,
    write_section,
)
from edge import EDGE_DISTRIBUTIONS, TF_MODULES

CLIENTS = ("bare_python", "edge", "tensorflow_tflite", "tensorflow_keras")
TF_CLIENTS = ("tensorflow_tflite", "tensorflow_keras")
EDGE_ROOTS = EDGE_DISTRIBUTIONS
FULL_REPEATS, QUICK_REPEATS = 3, 1
CLIENT_TIMEOUT_S = 600


class TensorFlowLeak(AssertionError):
    """The edge client process loaded a TensorFlow module."""


class _BlockTensorFlow:
    """A meta-path finder that refuses TensorFlow-family imports (the edge client installs it)."""

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name.split(".")[0] in TF_MODULES:
            raise ImportError(f"{name} is blocked: the edge client must not need it")


def _vm_hwm_bytes() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def client_main(kind: str, run: Path) -> dict[str, Any]:
    """The work of one client process; returns its self-measured figures.

    Runs in the child. Imports happen here, timed, so the parent's numbers include nothing
    but what this kind of client needs.
    """
    result: dict[str, Any] = {"kind": kind}
    if kind == "bare_python":
        result.update(import_s=0.0, work_s=0.0)
    elif kind in ("edge", "tensorflow_tflite"):
        if kind == "edge":
            sys.meta_path.insert(0, _BlockTensorFlow())
        t0 = time.perf_counter()
        if kind == "tensorflow_tflite":
            import tensorflow as tf
        import numpy as np

        import edge.runtime
        from edge.evaluate import evaluate_dir
        from edge.trainer import OnDeviceTrainer
        from model.dataset import load_names

        if kind == "tensorflow_tflite":
            edge.runtime.interpreter_class = lambda purpose="inference": tf.lite.Interpreter
        runtimes = {p: edge.runtime.interpreter_class(p) for p in ("inference", "training")}
        result["import_s"] = time.perf_counter() - t0
        result["runtime"] = ", ".join(
            f"{p} {r.__module__}.{r.__name__}" for p, r in runtimes.items()
        )
        t0 = time.perf_counter()
        model_dir = run / "model"
        manifest = json.loads((model_dir / "manifest.json").read_text())
        metrics = evaluate_dir(
            model_dir / manifest["artifacts"]["int8"]["file"], run / "test_names"
        )
        trainer = OnDeviceTrainer(model_dir)
        ds = load_names(run / "test_names")
        b = trainer.batch
        x = trainer.manifest.vocab.encode(list(ds.names[:b]))
        y = np.asarray(ds.labels[:b], np.int32)  # timing only: label order is irrelevant
        result["loss"] = trainer.train_step(x, y, np.ones(b, np.float32), 0.05)
        result["accuracy"] = metrics["accuracy"]
        result["work_s"] = time.perf_counter() - t0
    elif kind == "tensorflow_keras":
        t0 = time.perf_counter()
        import numpy as np
        import tensorflow as tf

        from edge.evaluate import labels_for_model
        from model.dataset import load_names
        from model.gru import load_classifier
        from model.manifest import ModelManifest
        from model.metrics import classification_metrics

        result["import_s"] = time.perf_counter() - t0
        result["runtime"] = f"tensorflow {tf.__version__} (Keras)"
        t0 = time.perf_counter()
        manifest = ModelManifest.load(run / "model")
        model = load_classifier(run / "model" / "keras_model.keras")
        ds = load_names(run / "test_names")
        labels = labels_for_model(ds, manifest.languages)
        ids = manifest.vocab.encode(list(ds.names))
        pred = np.argmax(model.predict(ids, batch_size=256, verbose=0), 1)
        result["accuracy"] = classification_metrics(labels, pred, len(manifest.languages))[
            "accuracy"
        ]
        model.compile(
            optimizer=tf.keras.optimizers.SGD(0.05),
            loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        b = manifest.train_batch
        result["loss"] = float(model.train_on_batch(ids[:b], labels[:b]))
        result["work_s"] = time.perf_counter() - t0
    else:
        raise SystemExit(f"unknown client kind {kind!r}; choose one of {', '.join(CLIENTS)}")
    result["tf_modules"] = tf_modules_loaded()
    result["vm_hwm_bytes"] = _vm_hwm_bytes()
    if kind == "edge" and result["tf_modules"]:
        raise TensorFlowLeak(f"the edge client loaded {result['tf_modules']}")
    return result


def run_client(kind: str, run: Path) -> dict[str, Any]:
    """Start one client process, wait for it, and add its peak RSS and wall time.

    The peak is the child's VmHWM (see the module docstring); ``os.wait4`` gives exactly that
    child's rusage as the fallback, not the largest of every child this process has had.
    """
    with tempfile.TemporaryDirectory(prefix="pifed-footprint-") as tmp:
        out_path, err_path = Path(tmp) / "out.json", Path(tmp) / "err.txt"
        with open(out_path, "w") as out, open(err_path, "w") as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                module_command("bench_footprint", "client", kind, str(run)),
                stdout=out,
                stderr=err,
                env=module_env(),
            )
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            wall = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            tail = err_path.read_text()[-3000:]
            raise RuntimeError(f"{kind} client exited with {proc.returncode}:\n{tail}")
        result: dict[str, Any] = json.loads(out_path.read_text().strip().splitlines()[-1])
    # On Linux a child's ru_maxrss starts from its parent's RSS at fork (the kernel carries the
    # pre-exec high-water mark over), so the child's own VmHWM is the figure when /proc exists.
    result["ru_maxrss_bytes"] = usage.ru_maxrss * 1024
    result["peak_rss_bytes"] = result.get("vm_hwm_bytes") or result["ru_maxrss_bytes"]
    result["peak_rss_source"] = "VmHWM" if result.get("vm_hwm_bytes") else "ru_maxrss"
    result["wall_s"] = wall
    return result


def measure_clients(run: Path, kinds: tuple[str, ...], repeats: int) -> dict[str, Any]:
    """Every client ``repeats`` times, in alternation; medians of times and peak RSS."""
    samples: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    for _ in range(repeats):
        for kind in kinds:
            samples[kind].append(run_client(kind, run))
    out: dict[str, Any] = {}
    for kind, runs in samples.items():
        last = runs[-1]
        entry = {
            key: statistics.median(r[key] for r in runs)
            for key in ("peak_rss_bytes", "import_s", "work_s", "wall_s")
        }
        entry["peak_rss_bytes_max"] = max(r["peak_rss_bytes"] for r in runs)
        entry["ru_maxrss_bytes"] = last["ru_maxrss_bytes"]
        entry["peak_rss_source"] = last["peak_rss_source"]
        entry["tf_modules_loaded"] = len(last["tf_modules"])
        entry["runtime"] = last.get("runtime", "python")
        if "accuracy" in last:
            entry["accuracy"] = last["accuracy"]
        entry["runs"] = len(runs)
        out[kind] = entry
    if "edge" in out and any(r["tf_modules"] for r in samples["edge"]):
        raise TensorFlowLeak("the edge client loaded TensorFlow modules")
    return out


# --- installed size -------------------------------------------------------------------------


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed() -> dict[str, md.Distribution]:
    out: dict[str, md.Distribution] = {}
    for dist in md.distributions():
        name = dist.metadata["Name"]
        if name and canonical(name) not in out:
            out[canonical(name)] = dist
    return out


_EXTRA = re.compile(r"""extra\s*==\s*['"]([^'"]+)['"]""")


def _requirements(dist: md.Distribution, extras: frozenset[str]) -> list[str]:
    """Names ``dist`` requires here, with the given extras, markers evaluated when possible.

    ``packaging`` evaluates markers when it is installed; without it (a bare Pi venv) only the
    ``extra`` part of a marker is honoured and every other condition counts as true, which can
    only overstate a set (a requirement that is not installed is skipped anyway).
    """
    try:
        from packaging.requirements import Requirement
    except ImportError:
        Requirement = None  # type: ignore[assignment,misc]  # noqa: N806
    names = []
    for text in dist.requires or []:
        if Requirement is not None:
            req = Requirement(text)
            if req.marker is not None and not any(
                req.marker.evaluate({"extra": e}) for e in (extras or {""})
            ):
                continue
            names.append(canonical(req.name))
        else:
            name, _, marker = text.partition(";")
            wanted = _EXTRA.findall(marker)
            if wanted and not set(wanted) & extras:
                continue
            match = re.match(r"[A-Za-z0-9._-]+", name.strip())
            if match:
                names.append(canonical(match.group(0)))
    return names


def closure(roots: dict[str, frozenset[str]], installed: dict[str, md.Distribution]) -> list[str]:
    """Installed distributions reachable from ``roots`` (name -> extras) through requirements."""
    seen: set[str] = set()
    todo = [(canonical(n), e) for n, e in roots.items()]
    while todo:
        name, extras = todo.pop()
        if name in seen or name not in installed:
            continue
        seen.add(name)
        todo.extend((dep, frozenset()) for dep in _requirements(installed[name], extras))
    return sorted(seen)


def dist_bytes(dist: md.Distribution, counted: set[Path]) -> int:
    """Bytes of the files a distribution's RECORD lists (each file counted once per set)."""
    total = 0
    for f in dist.files or []:
        path = Path(str(dist.locate_file(f)))
        try:
            real = path.resolve()
            if real in counted or not real.is_file():
                continue
            counted.add(real)
            total += real.stat().st_size
        except OSError:
            continue
    return total


def set_size(names: list[str], installed: dict[str, md.Distribution]) -> dict[str, Any]:
    """Total and per-distribution installed bytes of a set of distributions."""
    counted: set[Path] = set()
    per = {n: dist_bytes(installed[n], counted) for n in names}
    return {"bytes": sum(per.values()), "count": len(per), "distributions": per}


def installed_sizes() -> dict[str, Any]:
    """The edge set against the whole environment and against the coordinator set."""
    installed = _installed()
    edge_names = closure(
        {n: frozenset({"edge"} if n == "pifed" else ()) for n in EDGE_ROOTS}, installed
    )
    edge = set_size(edge_names, installed)
    everything = set_size(sorted(installed), installed)
    coordinator_names = closure({"pifed": frozenset({"full", "server", "edge"})}, installed)
    coordinator = set_size(coordinator_names, installed)
    biggest = sorted(everything["distributions"].items(), key=lambda kv: -kv[1])[:10]
    return {
        "method": "sum of RECORD files of installed distributions (importlib.metadata)",
        "edge": edge,
        "full_venv": {"bytes": everything["bytes"], "count": everything["count"]},
        "coordinator": {"bytes": coordinator["bytes"], "count": coordinator["count"]},
        "largest_in_venv": dict(biggest),
        "edge_over_full_venv": edge["bytes"] / everything["bytes"],
        "edge_over_coordinator": edge["bytes"] / coordinator["bytes"]
        if coordinator["bytes"]
        else None,
    }


def footprint_section(run: Path, kinds: tuple[str, ...], repeats: int) -> dict[str, Any]:
    """Clients and installed sizes, with the ratios the targets use."""
    clients = measure_clients(run, kinds, repeats)
    section: dict[str, Any] = {"repeats": repeats, "clients": clients}
    edge = clients.get("edge")
    if edge and "bare_python" in clients:
        section["edge_over_bare_rss"] = (
            edge["peak_rss_bytes"] / clients["bare_python"]["peak_rss_bytes"]
        )
    tf_present = [k for k in TF_CLIENTS if k in clients]
    if edge and tf_present:
        smallest = min(tf_present, key=lambda k: clients[k]["peak_rss_bytes"])
        section["tensorflow_reference"] = smallest
        section["edge_over_tensorflow_rss"] = (
            edge["peak_rss_bytes"] / clients[smallest]["peak_rss_bytes"]
        )
        section["tensorflow_over_edge_import"] = clients[smallest]["import_s"] / max(
            edge["import_s"], 1e-9
        )
        for k in tf_present:
            clients[k]["edge_over_this_rss"] = edge["peak_rss_bytes"] / clients[k]["peak_rss_bytes"]
    section["installed"] = installed_sizes()
    return section


def print_section(section: dict[str, Any]) -> None:
    """Clients and sizes as a table on stdout."""
    print("footprint: one process per client (load, evaluate int8 on the test split, 1 train step)")
    print(f"{'client':<20}{'peak RSS MB':>12}{'import s':>10}{'work s':>9}{'wall s':>9}  runtime")
    for kind, c in section["clients"].items():
        print(
            f"{kind:<20}{c['peak_rss_bytes'] / 2**20:>12.1f}{c['import_s']:>10.2f}"
            f"{c['work_s']:>9.2f}{c['wall_s']:>9.2f}  {c['runtime']}"
        )
    if "edge_over_tensorflow_rss" in section:
        print(
            f"  edge / {section['tensorflow_reference']} peak RSS: "
            f"{section['edge_over_tensorflow_rss']:.3f}; import time "
            f"{section['tensorflow_over_edge_import']:.1f}x faster"
        )
    inst = section["installed"]
    print(
        f"installed: edge set {inst['edge']['bytes'] / 1e6:.1f} MB ({inst['edge']['count']} "
        f"distributions), whole venv {inst['full_venv']['bytes'] / 1e6:.1f} MB "
        f"({inst['full_venv']['count']}), coordinator set {inst['coordinator']['bytes'] / 1e6:.1f} "
        f"MB; edge / venv {inst['edge_over_full_venv']:.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    """Suite mode (default) or ``client KIND RUN`` (one measured child process)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["client"]:
        if len(argv) != 3:
            raise SystemExit("usage: python -m benchmarks.suite.bench_footprint client KIND RUN")
        print(json.dumps(client_main(argv[1], Path(argv[2]))))
        return 0
    args = suite_parser(__doc__).parse_args(argv)
    section = footprint_section(args.run, CLIENTS, QUICK_REPEATS if args.quick else FULL_REPEATS)
    write_section(args.out, "footprint", section)
    print_section(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
