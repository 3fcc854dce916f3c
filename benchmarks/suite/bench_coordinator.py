"""Coordinator suite: the TensorFlow-free coordinator against today's, side by side in one run.

    uv run python -m benchmarks.suite.bench_coordinator --run RUN --out DIR [--data DIR]

The run's model (``pifed train`` default size) is copied twice: once with its template map
(``python -m federated.template_map``) and once without (the converter path, as today).

- **Export**: one round's candidate files (the default deploy kind, float; and float + dynamic)
  from the map's writer and from the converter, same weights, interleaved repetitions, in this
  process.
- **Start to listening**: `pifed server --model DIR` on a fresh database, in a process that
  cannot import TensorFlow, against the same command with the full set; time from the process
  start to its "listening" line.
- **Fleet**: the same real fleet twice, one after the other (3 `pifed edge` processes, TLS,
  secure aggregation, the gate, deployments; 10 rounds; ``--quick``: 2 devices, 1 round): the
  coordinator in a child process, once TensorFlow-blocked with the map, once with the
  converter. Its peak RSS (``ru_maxrss`` of that child: the Pis are its subprocesses, not
  counted) and the fleet's wall time.
- **Installed size**: the server set (``pifed[server]`` and its dependencies) against the full
  set (``pifed[full]``), from the installed distributions' RECORD files.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.suite.contract import module_command, module_env, suite_parser, write_section

FLEET_FULL = {"devices": 3, "rounds": 10}
FLEET_QUICK = {"devices": 2, "rounds": 1}
BLOCKED = ("tensorflow", "tensorflow_federated", "keras", "tf_keras", "jax", "rich", "matplotlib")
BLOCK_SRC = (
    "import sys\n"
    "class _Block:\n"
    "    def find_spec(self, name, path, target=None):\n"
    f"        if name.split('.')[0] in {BLOCKED!r}:\n"
    "            raise ImportError(name + ' is blocked: a coordinator without TensorFlow')\n"
    "sys.meta_path.insert(0, _Block())\n"
)


def block_tensorflow() -> None:
    """Make TensorFlow (and what only the full set has) unimportable in this process."""
    exec(BLOCK_SRC, {})


def model_folders(run: Path, out: Path) -> tuple[Path, Path]:
    """(with the template map, without it) copies of the run's model."""
    from federated.exporter import with_template_map
    from model.manifest import ModelManifest
    from model.tflite_template import MAP_KIND

    mapped, bare = out / "model_map", out / "model_converter"
    for d in (mapped, bare):
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(run / "model", d)
    for d in (mapped, bare):
        m = ModelManifest.load(d)
        if MAP_KIND in m.artifacts:
            arts = {k: v for k, v in m.artifacts.items() if k != MAP_KIND}
            ModelManifest(**{**m.__dict__, "artifacts": arts}).save(d)
            (d / m.artifacts[MAP_KIND]["file"]).unlink()
    if with_template_map(mapped) is None:
        raise RuntimeError("this model has no verifiable template map (see the log)")
    return mapped, bare


def export_section(mapped: Path, repeats: int) -> dict[str, Any]:
    """Seconds per candidate export, writer against converter, same weights."""
    from edge.trainer import OnDeviceTrainer
    from federated.exporter import CandidateExporter
    from model.manifest import ModelManifest

    template = ModelManifest.load(mapped)
    writer, converter = CandidateExporter(template, mapped), CandidateExporter(template)
    assert writer.writer is not None, writer.fallback_reason
    base = OnDeviceTrainer(mapped).flat_weights()
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {}
    for label, kinds in (("float", ("float",)), ("float_dynamic", ("float", "dynamic"))):
        times: dict[str, list[float]] = {"map": [], "converter": []}
        identical = True
        for i in range(repeats + 1):  # the first of each is a warm-up
            flat = base + rng.normal(0, 0.01, base.size).astype(np.float32)
            made = {}
            for name, ex in (("map", writer), ("converter", converter)):
                t = time.perf_counter()
                made[name] = ex.export(flat, i + 2, kinds)
                if i:
                    times[name].append(time.perf_counter() - t)
            identical &= made["map"] == made["converter"]
        m, c = statistics.median(times["map"]), statistics.median(times["converter"])
        out[label] = {
            "map_s": m,
            "converter_s": c,
            "map_over_converter": m / c,
            "byte_identical": identical,
            "repeats": repeats,
        }
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def time_to_listening(model: Path, out: Path, blocked: bool) -> float:
    """Seconds from starting `pifed server --model` on a fresh db to its listening line."""
    db = out / f"start-{time.monotonic_ns()}.db"
    log = db.with_suffix(".log")
    code = BLOCK_SRC if blocked else "import sys\n"
    code += "from pifed.cli import main\nraise SystemExit(main(sys.argv[1:]))\n"
    cmd = [sys.executable, "-c", code, "server", "--db", str(db), "--insecure"]
    cmd += ["--model", str(model), "--listen", f"127.0.0.1:{_free_port()}"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    try:
        while "listening" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.perf_counter() - t0 > 120:
                raise RuntimeError(f"the server did not listen: {log.read_text()[-1500:]}")
            time.sleep(0.01)
        return time.perf_counter() - t0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_section(mapped: Path, out: Path, repeats: int) -> dict[str, Any]:
    """Median start-to-listening, TensorFlow blocked and with the full set, interleaved."""
    free, full = [], []
    for _ in range(repeats):
        free.append(time_to_listening(mapped, out, blocked=True))
        full.append(time_to_listening(mapped, out, blocked=False))
    return {
        "no_tensorflow_s": statistics.median(free),
        "full_set_s": statistics.median(full),
        "runs": {"no_tensorflow": free, "full_set": full},
    }


def fleet_child(args: argparse.Namespace) -> int:
    """One coordinator in this process and its edges; prints one JSON line."""
    if args.child == "map":
        block_tensorflow()
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "integration"))
    from fleet_harness import PROMOTE_ALL, enroll_pis, iid_device_folders, start_edges

    from federated.certs import make_certs
    from federated.coordinator import FleetConfig
    from federated.fleet import FleetServer
    from federated.round_settings import RoundSettings
    from model.dataset import load_names, resolve_data_dir

    out: Path = args.out
    ds = load_names(resolve_data_dir(args.data))
    certs = make_certs(out / "certs").ca_cert.parent
    tokens, _ = enroll_pis(out, [f"pi-{i}" for i in range(args.devices)])
    cfg = FleetConfig(
        rounds=args.rounds,
        min_devices=args.devices,
        settings=RoundSettings(gate=PROMOTE_ALL),
        stage_timeout=120,
        train_timeout=900,
        wait_devices_timeout=600,
    )
    t0 = time.perf_counter()
    fleet = FleetServer.start(out / "fleet.db", args.model, cfg, "127.0.0.1:0", certs)
    edges = []
    try:
        folders = iid_device_folders(ds, out, args.devices)
        edges = start_edges(fleet.port, tokens, folders, out, certs / "ca.pem")
        summaries = fleet.coordinator.run()
        wall = time.perf_counter() - t0
    finally:
        for e in edges:
            e.stop()
        fleet.close()
    loaded = sorted({m.split(".")[0] for m in sys.modules} & set(BLOCKED))
    print(
        json.dumps(
            {
                "mode": args.child,
                "wall_s": wall,
                "peak_rss_mb": vm_hwm_mb(),
                "ok_rounds": sum(bool(s["ok"]) for s in summaries),
                "rounds": len(summaries),
                "export_s": [s.get("timings", {}).get("export") for s in summaries],
                "round_s": [s.get("timings", {}).get("total") for s in summaries],
                "heavy_modules_loaded": loaded,
            }
        )
    )
    return 0


def vm_hwm_mb() -> float:
    """This process's peak RSS (VmHWM). Not ru_maxrss: that survives exec, so a child of a
    TensorFlow process would report its parent's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def fleet_run(mode: str, model: Path, out: Path, plan: dict[str, int], data: str | None) -> dict:
    """Run :func:`fleet_child` as its own process and parse its line."""
    where = out / f"fleet_{mode}"
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    cmd = module_command(
        "bench_coordinator", "--child", mode, "--model", str(model), "--run", str(model),
        "--out", str(where), "--devices", str(plan["devices"]), "--rounds", str(plan["rounds"]),
        *(["--data", data] if data else []),
    )  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=module_env(), timeout=3600)
    (where / "child.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(
            f"the {mode} fleet failed (exit {proc.returncode}): {proc.stderr[-800:]}"
        )
    res = dict(json.loads(proc.stdout.strip().splitlines()[-1]))
    if res["ok_rounds"] != plan["rounds"]:
        raise RuntimeError(
            f"the {mode} fleet completed {res['ok_rounds']} of {plan['rounds']} rounds "
            f"(see {where / 'child.log'})"
        )
    return res


def fleet_section(mapped: Path, bare: Path, out: Path, quick: bool, data: str | None) -> dict:
    """The same fleet with each coordinator, one after the other."""
    plan = FLEET_QUICK if quick else FLEET_FULL
    free = fleet_run("map", mapped, out, plan, data)
    today = fleet_run("converter", bare, out, plan, data)
    return {
        **plan,
        "no_tensorflow": free,
        "converter": today,
        "rss_ratio": free["peak_rss_mb"] / today["peak_rss_mb"],
        "wall_ratio": free["wall_s"] / today["wall_s"],
    }


def install_section() -> dict[str, Any]:
    """Installed bytes of the server set against the full set."""
    from benchmarks.suite.bench_footprint import _installed, closure, set_size

    installed = _installed()
    server = closure({"pifed": frozenset({"server", "edge"})}, installed)
    full = closure({"pifed": frozenset({"full", "server", "edge"})}, installed)
    s, f = set_size(server, installed), set_size(full, installed)
    return {
        "server": {"bytes": s["bytes"], "count": s["count"], "distributions": server},
        "full": {"bytes": f["bytes"], "count": f["count"]},
        "server_over_full": s["bytes"] / f["bytes"],
    }


def main(argv: list[str] | None = None) -> int:
    """Write coordinator.json (or, with --child, run one fleet coordinator)."""
    p = suite_parser(__doc__)
    p.add_argument("--child", choices=("map", "converter"), help=argparse.SUPPRESS)
    p.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--devices", type=int, default=3, help=argparse.SUPPRESS)
    p.add_argument("--rounds", type=int, default=10, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return fleet_child(args)
    out: Path = args.out / "coordinator"
    out.mkdir(parents=True, exist_ok=True)
    mapped, bare = model_folders(args.run, out)
    section: dict[str, Any] = {"pid": os.getpid()}
    section["export"] = export_section(mapped, 2 if args.quick else 10)
    e = section["export"]["float"]
    print(
        f"coordinator: export (float) map {e['map_s'] * 1000:.1f} ms vs converter "
        f"{e['converter_s']:.2f} s = {e['map_over_converter']:.4f}x, byte-identical "
        f"{e['byte_identical']}"
    )
    section["start"] = start_section(mapped, out, 2 if args.quick else 3)
    st = section["start"]
    print(
        f"coordinator: start to listening {st['no_tensorflow_s']:.2f} s without TensorFlow, "
        f"{st['full_set_s']:.2f} s with the full set"
    )
    section["installed"] = install_section()
    inst = section["installed"]
    print(
        f"coordinator: server set {inst['server']['bytes'] / 1e6:.1f} MB vs full set "
        f"{inst['full']['bytes'] / 1e6:.1f} MB = {inst['server_over_full']:.3f}x"
    )
    try:
        section["fleet"] = fleet_section(mapped, bare, out, args.quick, args.data)
        f = section["fleet"]
        print(
            f"coordinator: {f['devices']} Pis x {f['rounds']} rounds: peak RSS "
            f"{f['no_tensorflow']['peak_rss_mb']:.0f} MB vs {f['converter']['peak_rss_mb']:.0f}"
            f" MB = {f['rss_ratio']:.3f}x; wall {f['no_tensorflow']['wall_s']:.0f} s vs "
            f"{f['converter']['wall_s']:.0f} s = {f['wall_ratio']:.3f}x"
        )
    except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as err:
        section["fleet"] = {"available": False, "reason": str(err)}
        print(f"coordinator: fleet: {err}")
    write_section(args.out, "coordinator", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
