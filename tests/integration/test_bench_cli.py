"""`pifed bench` as a user runs it: quick runs of every suite on the small trained model.

These tests check that every promised field is there with a sane value and that the report
files exist. They never assert on speed: the benchmark itself prints its ratios with met/missed.
The edge suite runs in a process tree where importing TensorFlow raises, as on a Pi.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edge import TF_MODULES
from pifed.commands import bench as bench_command

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"
TFLITE = ("float", "dynamic", "int8")
BLOCKER = (
    f"""
import sys

BLOCKED = {TF_MODULES!r}
"""
    + """

class _Block:
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: this process stands in for a Pi")
        return None


sys.meta_path.insert(0, _Block())
"""
)


def _bench(out: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pifed", "bench", "--out", str(out), "--quick", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def bench_all(
    trained_run: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any], str]:
    """One quick run of every suite except edge (that one runs TF-blocked below)."""
    out = tmp_path_factory.mktemp("bench")
    suites = [
        a
        for s in ("inference", "training", "footprint", "round", "scaling")
        for a in ("--suite", s)
    ]
    proc = _bench(out, "--run", str(trained_run), "--data", str(data_dir), *suites)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, json.loads((out / "results.json").read_text()), proc.stdout


@pytest.fixture(scope="module")
def blocked_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment whose every Python process refuses to import TensorFlow (sitecustomize)."""
    site = tmp_path_factory.mktemp("no_tf_site")
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH")) if p)
    probe = subprocess.run(
        [sys.executable, "-c", "import tensorflow"], env=env, capture_output=True, text=True
    )
    assert probe.returncode != 0 and "blocked" in probe.stderr, "the TF blocker is not active"
    return env


@pytest.fixture(scope="module")
def bench_edge(
    trained_run: Path, blocked_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    """The edge suite, as a Pi runs it: TensorFlow cannot be imported anywhere in the tree."""
    out = tmp_path_factory.mktemp("bench_edge")
    proc = _bench(out, "--suite", "edge", "--run", str(trained_run), env=blocked_env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, json.loads((out / "results.json").read_text())


def _positive(*values: Any) -> bool:
    return all(isinstance(v, int | float) and v > 0 for v in values)


def _check_tflite_variant(v: dict[str, Any], threads: tuple[str, ...]) -> None:
    assert v["runtime"] == "ai_edge_litert"  # inference; training runs on tflite_runtime
    assert _positive(v["single_p50_us"], v["single_p99_us"], v["batch256_names_per_s"], v["bytes"])
    assert v["single_p99_us"] >= v["single_p50_us"]
    assert 0 < v["accuracy"] <= 1 and 0 < v["balanced_accuracy"] <= 1
    assert tuple(v["by_threads"]) == threads
    for fig in v["by_threads"].values():
        assert _positive(fig["single_p50_us"], fig["single_p99_us"], fig["batch256_names_per_s"])


@pytest.mark.slow
def test_results_record_the_platform_and_the_model(bench_all: tuple[Path, dict, str]) -> None:
    _, res, _ = bench_all
    p = res["platform"]
    assert p["cpu_model"] and p["architecture"] and p["cores"] >= 1
    assert p["python"].startswith("3.")
    for pkg in ("numpy", "tflite-runtime", "ai-edge-litert", "tensorflow", "pifed"):
        assert p["packages"][pkg], pkg
    assert res["quick"] is True and res["run"]["parameters"] > 0
    assert set(res["suites"]) == {"inference", "training", "footprint", "round", "scaling"}
    assert all("error" not in s for s in res["suites"].values())


@pytest.mark.slow
def test_every_target_is_a_ratio_with_met_or_missed(bench_all: tuple[Path, dict, str]) -> None:
    _, res, stdout = bench_all
    measured = [t for t in res["targets"] if t["status"] != "not measured"]
    assert {t["key"] for t in measured} == {
        "int8_latency_vs_keras_eager",
        "edge_rss_vs_tensorflow",
        "edge_install_vs_full",
        "tflite_step_vs_keras",
    }
    # The coordinator suite did not run here (tests/integration/test_bench_coordinator.py runs
    # it): its targets say so instead of carrying a figure.
    rest = [t for t in res["targets"] if t not in measured]
    assert rest and all(t["suite"] == "coordinator" and t["met"] is None for t in rest), rest
    for t in measured:
        assert _positive(t["ratio"]) and isinstance(t["met"], bool), t
        assert t["status"] == ("met" if t["met"] else "missed")
        assert t["claim"] in stdout  # printed with met/missed, not only written
    assert stdout.count("[    MET     ]") + stdout.count("[   MISSED   ]") == 4


@pytest.mark.slow
def test_inference_has_every_variant_with_latency_throughput_size_accuracy(
    bench_all: tuple[Path, dict, str], trained_run: Path
) -> None:
    _, res, _ = bench_all
    inf = res["suites"]["inference"]
    assert set(inf["variants"]) == {"keras_eager", "keras_predict", *TFLITE}
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert inf["n_test"] == metrics["data"]["test"]
    for kind in TFLITE:
        v = inf["variants"][kind]
        _check_tflite_variant(v, ("1", "2", "4"))
        # The same artifact on the same names gives exactly the accuracy `pifed train` reported.
        assert v["accuracy"] == pytest.approx(metrics["tflite"][kind]["accuracy"])
        assert v["bytes"] == (trained_run / "model" / v["file"]).stat().st_size
        assert _positive(v["single_speedup_vs_keras_eager"], v["throughput_vs_keras_predict"])
    for name in ("keras_eager", "keras_predict"):
        v = inf["variants"][name]
        assert v["runtime"] == "tensorflow" and v["file"] == "keras_model.keras"
        assert _positive(v["single_p50_us"], v["batch256_names_per_s"], v["bytes"])
        assert v["single_p99_us"] >= v["single_p50_us"]
        assert v["accuracy"] == pytest.approx(metrics["keras"]["accuracy"])


@pytest.mark.slow
def test_training_compares_step_and_local_epoch(bench_all: tuple[Path, dict, str]) -> None:
    _, res, _ = bench_all
    tr = res["suites"]["training"]
    step, epoch = tr["step"], tr["local_epoch"]
    assert step["batch"] == 32
    assert _positive(step["tflite_step_p50_ms"], step["keras_step_p50_ms"])
    assert step["tflite_step_p99_ms"] >= step["tflite_step_p50_ms"]
    assert "1" in step["tflite_by_threads"]
    assert _positive(step["keras_cpu_ms"], step["tflite_cpu_ms"], step["keras_over_tflite_cpu"])
    assert step["keras_over_tflite_step"] == pytest.approx(
        step["keras_step_p50_ms"] / step["tflite_step_p50_ms"]
    )
    # The numpy fallback trainer, side by side on the same batches.
    assert _positive(step["numpy_step_p50_ms"], step["numpy_cpu_ms"])
    assert step["numpy_over_tflite_step"] == pytest.approx(
        step["numpy_step_p50_ms"] / step["tflite_step_p50_ms"]
    )
    same = step["same_threads"]  # Keras pinned to 1 thread beside TFLite at 1 thread
    assert same["keras_threads"] == 1 and tuple(same["tflite_by_threads"]) == ("1",)
    assert _positive(same["keras_step_p50_ms"], same["tflite_step_p50_ms"])
    assert epoch["devices"] == 2 and epoch["names"] > 0
    assert epoch["steps"] == -(-epoch["names"] // 32)
    assert _positive(epoch["tflite_s"], epoch["keras_s"], epoch["keras_over_tflite"])


@pytest.mark.slow
def test_footprint_clients_and_installed_sizes(bench_all: tuple[Path, dict, str]) -> None:
    _, res, _ = bench_all
    fp = res["suites"]["footprint"]
    clients = fp["clients"]
    assert set(clients) == {"bare_python", "edge", "tensorflow_tflite", "tensorflow_keras"}
    assert clients["edge"]["tf_modules_loaded"] == 0
    assert clients["edge"]["runtime"] == (
        "inference ai_edge_litert.interpreter.Interpreter, "
        "training tflite_runtime.interpreter.Interpreter"
    )
    assert clients["tensorflow_tflite"]["runtime"].startswith("inference tensorflow")
    for name in ("tensorflow_tflite", "tensorflow_keras"):
        assert clients[name]["tf_modules_loaded"] > 0, name
    for c in clients.values():
        assert _positive(c["peak_rss_bytes"], c["wall_s"]) and c["import_s"] >= 0
    # Same work, same int8 artifact: the edge client and the tf.lite one agree on accuracy, up
    # to near-ties. The two runtime builds' int8 kernels may round an output one level apart
    # (2 of 3,602 predictions flipped in one run); 0.002 is ~7 names, far below a real defect.
    assert clients["edge"]["accuracy"] == pytest.approx(
        clients["tensorflow_tflite"]["accuracy"], abs=2e-3
    )
    assert clients["bare_python"]["peak_rss_bytes"] < clients["edge"]["peak_rss_bytes"]
    inst = fp["installed"]
    assert {
        "numpy",
        "tflite-runtime",
        "ai-edge-litert",
        "grpcio",
        "protobuf",
        "pycryptodome",
    } <= set(inst["edge"]["distributions"])
    assert "tensorflow" not in inst["edge"]["distributions"]
    assert 0 < inst["edge"]["bytes"] < inst["coordinator"]["bytes"] <= inst["full_venv"]["bytes"]
    assert inst["edge_over_full_venv"] == pytest.approx(
        inst["edge"]["bytes"] / inst["full_venv"]["bytes"]
    )


@pytest.mark.slow
def test_round_and_scaling_report_secagg(
    bench_all: tuple[Path, dict, str],
) -> None:
    _, res, _ = bench_all
    for suite in ("round", "scaling"):
        sa = res["suites"][suite]["secagg"]
        assert sa["available"] is True, sa
    rounds = res["suites"]["round"]["secagg"].get("rounds", [])
    for r in rounds:
        assert _positive(r["n"], r["round_s"], r["round_over_plain_sum"])
    points = res["suites"]["scaling"]["secagg"].get("vs_n", [])
    assert [p["n"] for p in points] == sorted(p["n"] for p in points)


@pytest.mark.slow
def test_round_breaks_a_real_fleet_round_down_by_stage(bench_all: tuple[Path, dict, str]) -> None:
    # Quick: 2 real `pifed edge` processes, 1 round, TLS and secure aggregation.
    _, res, stdout = bench_all
    fleet = res["suites"]["round"]["fleet"]
    assert fleet["available"] is True, fleet
    assert (fleet["devices"], fleet["units"], len(fleet["rounds"])) == (2, 16, 1)
    (r,) = fleet["rounds"]
    assert r["ok"] is True
    stages = ("train_s", "mask_upload_s", "unmask_aggregate_s", "export_s", "evaluate_s")
    assert _positive(*(r[k] for k in stages), r["deploy_s"], r["total_s"], r["secagg_at_most_s"])
    assert r["setup_and_keys_s"] >= 0
    # The stages are parts of the round (the deploy of a promoted round included).
    parts = sum(r[k] for k in (*stages, "setup_and_keys_s", "deploy_s"))
    assert parts <= r["total_s"] * 1.001
    assert r["secagg_at_most_s"] == pytest.approx(
        r["setup_and_keys_s"] + r["mask_upload_s"] + r["unmask_aggregate_s"]
    )
    assert 0 < r["secagg_at_most_share"] < 1
    assert "mask+upload" in stdout and "secure aggregation" in stdout


@pytest.mark.slow
def test_scaling_times_the_simulation_against_clients(bench_all: tuple[Path, dict, str]) -> None:
    _, res, stdout = bench_all
    sim = res["suites"]["scaling"]["simulation"]
    assert sim["available"] is True, sim
    assert [r["clients"] for r in sim["rows"]] == [2, 4]
    for r in sim["rows"]:
        assert r["rounds"] == 1
        assert _positive(r["first_round_train_s"], r["mean_train_s_after_first"], r["mean_eval_s"])
    assert sim["train_growth"]["clients_ratio"] == 2
    assert "TFF simulation round time against clients" in stdout


@pytest.mark.slow
def test_markdown_and_charts_are_written(bench_all: tuple[Path, dict, str]) -> None:
    out, res, _ = bench_all
    md = (out / "results.md").read_text()
    for heading in ("## Targets", "### inference", "### training", "### footprint", "### round"):
        assert heading in md, heading
    expected = {
        "targets.png",
        "inference_latency.png",
        "inference_threads.png",
        "training.png",
        "footprint.png",
        "fleet_round.png",
        "simulation_scaling.png",
    }
    assert expected <= set(res["charts"])
    for name in res["charts"]:
        assert (out / name).read_bytes()[:8] == PNG, name
        assert f"]({name})" in md


@pytest.mark.slow
def test_edge_suite_runs_without_tensorflow(bench_edge: tuple[Path, dict]) -> None:
    out, res = bench_edge
    edge = res["suites"]["edge"]
    assert edge["tensorflow_imported"] is False
    assert (edge["runtime"], edge["training_runtime"]) == ("ai_edge_litert", "tflite_runtime")
    assert set(edge["inference"]["variants"]) == set(TFLITE)
    for kind in TFLITE:
        _check_tflite_variant(edge["inference"]["variants"][kind], ("1", "2", "4"))
    step = edge["training"]["step"]
    assert step["batch"] == 32 and _positive(step["tflite_step_p50_ms"])
    epoch = edge["training"]["local_epoch"]
    assert "tflite_s" in epoch or "skipped" in epoch
    clients = edge["footprint"]["clients"]
    assert set(clients) == {"bare_python", "edge"}
    assert clients["edge"]["tf_modules_loaded"] == 0
    assert edge["footprint"]["installed"]["edge"]["bytes"] > 0
    # No TensorFlow figures on this path, so no TF-relative target can be evaluated...
    by_key = {t["key"]: t for t in res["targets"]}
    assert by_key["int8_latency_vs_keras_eager"]["status"] == "not measured"
    assert (out / "results.md").is_file()
    assert (out / "edge_inference.png").read_bytes()[:8] == PNG


@pytest.mark.slow
def test_without_run_and_without_tensorflow_bench_says_what_to_do(
    blocked_env: dict[str, str], tmp_path: Path
) -> None:
    proc = _bench(tmp_path / "out", "--suite", "edge", env=blocked_env)
    assert proc.returncode == 2
    assert "--run" in proc.stderr and "TensorFlow" in proc.stderr


@pytest.mark.slow
def test_bad_run_dir_is_a_usage_error(tmp_path: Path) -> None:
    proc = _bench(tmp_path / "out", "--suite", "edge", "--run", str(tmp_path))
    assert proc.returncode == 2
    assert "manifest.json" in proc.stderr


def test_every_suite_of_the_cli_has_a_module_and_a_report() -> None:
    # pifed.commands.bench.SUITES is the one list; the runner and the report read it from there.
    runner = importlib.import_module("benchmarks.suite.runner")
    assert runner.SUITES is bench_command.SUITES
    for suite in bench_command.SUITES:
        assert (ROOT / "benchmarks" / "suite" / f"bench_{suite}.py").is_file(), suite
        report = importlib.import_module(f"benchmarks.suite.bench_{suite}_report")
        assert callable(report.section) and callable(report.charts), suite
        assert all(t.suite == suite for t in report.TARGETS), suite
