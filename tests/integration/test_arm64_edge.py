"""The edge subset on an emulated Raspberry Pi, compared with the same code on x86 in one run.

tools/arm64/setup.sh builds Raspberry Pi OS Bookworm's userland (Debian bookworm arm64, Python
3.11.2, glibc 2.36) under qemu-user and installs the project's wheel with the ``edge`` extra as
aarch64 wheels: no TensorFlow. tools/arm64/python runs that interpreter. Each check below runs a
driver from tests/arm64/ there *and* under this (x86) interpreter, and compares:

* every inference artifact of the ``trained_run`` model loads and evaluates with the Pi's code
  (``edge.evaluate``); metrics and logits match x86 within the tolerances documented at
  ``logit_tolerance``;
* the TFLite training step trains on aarch64 (the loss falls), tracks x86, and the initial
  weights restore bit for bit;
* the secure-aggregation client's tests and the known-answer vector pass under emulation, and
  seeded rounds (with dropouts, stochastic rounding, Shamir recovery, a 64-bit ring) produce
  byte-identical messages on aarch64 and x86;
* the emulated interpreter has the edge set only: ``import tensorflow`` fails there.

Timings, the largest logit differences, the digests and the aarch64 edge set's size against the
x86 full venv go to ``arm64_edge_figures.json`` in a pytest temp dir (its path is printed at the
end of the module). setup.sh needs qemu-user-static: it installs it with apt-get when missing.
Without CI set and on a machine that cannot install it, the module skips; in CI it never skips.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from edge import EDGE_DISTRIBUTIONS
from edge.secagg import Stage
from model.metrics import classification_metrics

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[2]
ARM64 = ROOT / "tools" / "arm64"
EMULATED_PYTHON = ARM64 / "python"
DRIVERS = ROOT / "tests" / "arm64"
KAT_TEST_FILE = ROOT / "tests" / "federated" / "test_secagg_server.py"
# The Pi's half of secure aggregation: the client library's tests, the known-answer vector and
# one full round with dropouts at three stages (a failing or missing node id fails the run).
EMULATED_SECAGG_TESTS = (
    "tests/edge/secagg",
    f"{KAT_TEST_FILE.relative_to(ROOT)}::test_known_answer_vector_of_a_three_client_round",
    f"{KAT_TEST_FILE.relative_to(ROOT)}::test_dropouts_spread_over_several_stages_still_give_the_exact_sum",
)
KINDS = ("float", "dynamic", "int8")
HEAVY_DISTS = {"tensorflow", "tensorflow-cpu", "tensorflow-federated", "keras", "tf-keras", "jax"}
EDGE_DISTS = set(EDGE_DISTRIBUTIONS)
# float32 kernels (XNNPACK on NEON vs AVX) sum in a different order: a few ulp of the logits.
FLOAT_ATOL = 1e-4
# int8 outputs may differ across architectures by this many levels (see logit_tolerance).
INT8_LEVELS = 4
# Quantised artifacts: at most this share of predictions may differ between aarch64 and x86.
MAX_FLIPPED_FRACTION = 0.005

RELEASES = ("bookworm", "trixie")
# What each emulated Raspberry Pi OS release runs (tools/arm64/README.md).
PI_PYTHON = {"bookworm": "3.11.", "trixie": "3.13."}
# edge.runtime trains on tflite-runtime where it has wheels (Python 3.11), else on ai-edge-litert.
PI_TRAINING_RUNTIME = {"bookworm": "tflite_runtime", "trixie": "ai_edge_litert"}
# Both trainers after TRAINER_STEPS SGD steps: max |w - x86 train.tflite's w| at most this.
TRAINER_ATOL = 1e-5
TRAINER_STEPS, TRAINER_LR = 10, 0.5

# Wall times per group: a release ("bookworm", "trixie") or "x86".
TIMINGS: dict[str, dict[str, float]] = {}
FIGURES: dict[str, dict] = {}


@dataclass(frozen=True)
class Pi:
    """One emulated Raspberry Pi OS release, set up by tools/arm64/setup.sh."""

    release: str
    cache: Path

    @property
    def site(self) -> Path:
        return self.cache / "site"

    @property
    def env(self) -> dict[str, str]:
        """The environment tools/arm64/python needs to run this release."""
        return {**os.environ, "PIFED_ARM64_RELEASE": self.release}

    @property
    def python(self) -> list[str]:
        return [str(EMULATED_PYTHON), "-P"]


def arm64_cache(release: str = "bookworm") -> Path:
    base = Path(os.environ.get("PIFED_ARM64_CACHE", Path.home() / ".cache" / "pifed" / "arm64"))
    return base if release == "bookworm" else base / release


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def can_install_qemu() -> bool:
    """qemu-user-static is there, or apt-get can install it (root or passwordless sudo)."""
    if shutil.which("qemu-aarch64-static"):
        return True
    if not shutil.which("apt-get"):
        return False
    if os.geteuid() == 0:
        return True
    if not shutil.which("sudo"):
        return False
    return subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0


def run_timed(
    group: str, name: str, cmd: list[str], timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` from the repo root, record its wall time, and require exit status 0."""
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    TIMINGS.setdefault(group, {})[name] = round(time.perf_counter() - t, 1)
    assert proc.returncode == 0, (
        f"{group} {name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    )
    return proc


def dir_size(path: Path, skip: str | None = None) -> int:
    """Bytes on disk under ``path`` (like du: allocated blocks, hard links once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for base, dirs, files in os.walk(path):
        if skip is not None:
            dirs[:] = [d for d in dirs if d != skip]
        for name in files:
            st = os.lstat(os.path.join(base, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def kat_constant() -> str:
    """KAT_SHA256 as tests/federated/test_secagg_server.py states it (parsed, not imported)."""
    for node in ast.parse(KAT_TEST_FILE.read_text()).body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "KAT_SHA256" for t in targets):
                return ast.literal_eval(node.value)  # type: ignore[arg-type]
    raise AssertionError(f"no KAT_SHA256 in {KAT_TEST_FILE}")


# -- fixtures --------------------------------------------------------------------------------------

# release -> its Pi, or the message of its failed setup (so a failure is not retried per test)
_SETUPS: dict[str, Pi | str] = {}


def set_up(release: str, tmp_path_factory: pytest.TempPathFactory) -> Pi:
    """Runs ``tools/arm64/setup.sh --release RELEASE`` once per session (a few s when warm)."""
    if not in_ci() and not can_install_qemu():
        pytest.skip(
            "qemu-aarch64-static is not installed and this machine cannot install it (needs "
            "apt-get and root or passwordless sudo); CI always can, so these run there"
        )
    if release not in _SETUPS:
        env = dict(os.environ)
        if env.get("UV"):  # `uv run` names its binary; setup.sh builds the wheel with it
            env["PATH"] = f"{Path(env['UV']).parent}{os.pathsep}{env.get('PATH', '')}"
        t = time.perf_counter()
        proc = subprocess.run(
            [str(ARM64 / "setup.sh"), "--release", release, str(ROOT)],
            capture_output=True,
            text=True,
            timeout=1500,
            env=env,
        )
        TIMINGS.setdefault(release, {})["setup.sh"] = round(time.perf_counter() - t, 1)
        log = tmp_path_factory.mktemp(f"arm64-setup-{release}") / "setup.log"
        log.write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
        _SETUPS[release] = (
            Pi(release, arm64_cache(release))
            if proc.returncode == 0
            else (
                f"tools/arm64/setup.sh --release {release} failed (exit {proc.returncode}; full "
                f"log {log}):\n{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-6000:]}"
            )
        )
    pi = _SETUPS[release]
    if isinstance(pi, str):
        pytest.fail(pi, pytrace=False)
    return pi


@pytest.fixture(scope="session", params=RELEASES)
def arm64_userland(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Pi:
    """Each emulated release in turn: every test that uses it runs on Bookworm and on Trixie."""
    return set_up(request.param, tmp_path_factory)


@pytest.fixture(scope="module", autouse=True)
def figures_file(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """After the module: write the timings and figures to JSON and print a line per release."""
    t0 = time.perf_counter()
    yield
    if not TIMINGS:
        return
    for release in RELEASES:
        steps = TIMINGS.get(release)
        if steps:
            steps["emulated_subset"] = round(sum(v for k, v in steps.items()), 1)
    x86 = TIMINGS.get("x86")
    if x86:
        x86["x86_side"] = round(sum(x86.values()), 1)
    # From this module's first test (the session fixtures, e.g. trained_run, come before).
    wall = round(time.perf_counter() - t0, 1)
    path = tmp_path_factory.mktemp("arm64-figures") / "arm64_edge_figures.json"
    path.write_text(
        json.dumps({"timings_s": TIMINGS, "module_tests_wall_s": wall, **FIGURES}, indent=1)
    )
    lines = [
        f"arm64 edge [{group}]: " + ", ".join(f"{k} {v}s" for k, v in steps.items())
        for group, steps in TIMINGS.items()
    ]
    for release in RELEASES:
        tr = FIGURES.get(release, {}).get("trainers", {})
        if "probe" in tr:
            diffs = ", ".join(
                f"{k} {v:.1e}" for k, v in tr["max_abs_weight_diff_vs_x86_tflite"].items()
            )
            lines.append(
                f"arm64 trainers [{release}]: max |dw| vs x86 train.tflite after "
                f"{tr['steps']} steps: {diffs}; probe picked {tr['probe']['trainer']}"
            )
    lines.append(f"arm64 edge: module tests {wall}s; figures in {path}")
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print("\n".join(lines))
        return
    with capture.global_and_fixture_disabled():  # visible without -s
        reporter.write_line("")
        for line in lines:
            reporter.write_line(line)


def _edge_session(
    python: list[str],
    group: str,
    trained_run: Path,
    out: Path,
    env: dict[str, str] | None = None,
) -> tuple[dict, dict]:
    run_timed(
        group,
        "edge session",
        [
            *python,
            str(DRIVERS / "edge_driver.py"),
            str(trained_run / "model"),
            str(trained_run / "test_names"),
            str(out),
        ],
        timeout=900,
        env=env,
    )
    report = json.loads((out / "report.json").read_text())
    with np.load(out / "arrays.npz") as arrays:
        return report, dict(arrays)


# x86 results, computed once for both releases
_X86: dict[str, object] = {}


@pytest.fixture(scope="module")
def edge_sessions(
    arm64_userland: Pi, trained_run: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[dict, dict]]:
    """The same edge session (evaluate every artifact, train, restore) on aarch64 and x86."""
    pi = arm64_userland
    out = tmp_path_factory.mktemp(f"arm64-edge-{pi.release}")
    if "edge" not in _X86:
        _X86["edge"] = _edge_session([sys.executable, "-P"], "x86", trained_run, out / "x86_64")
    return {
        "aarch64": _edge_session(pi.python, pi.release, trained_run, out / "aarch64", pi.env),
        "x86_64": _X86["edge"],  # type: ignore[dict-item]
    }


@pytest.fixture(scope="module")
def secagg_rounds(arm64_userland: Pi, tmp_path_factory: pytest.TempPathFactory) -> dict:
    pi = arm64_userland
    out = tmp_path_factory.mktemp(f"arm64-secagg-{pi.release}")
    if "secagg" not in _X86:
        path = out / "x86_64.json"
        run_timed(
            "x86",
            "secagg rounds",
            [sys.executable, "-P", str(DRIVERS / "secagg_driver.py"), str(path)],
            timeout=600,
        )
        _X86["secagg"] = json.loads(path.read_text())
    path = out / "aarch64.json"
    run_timed(
        pi.release,
        "secagg rounds",
        [*pi.python, str(DRIVERS / "secagg_driver.py"), str(path)],
        timeout=600,
        env=pi.env,
    )
    return {"aarch64": json.loads(path.read_text()), "x86_64": _X86["secagg"]}


@pytest.fixture(scope="module")
def trainer_input(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The start weights and TRAINER_STEPS batches both sides train from, as one .npz."""
    from edge.evaluate import labels_for_model
    from edge.trainer import OnDeviceTrainer
    from model.dataset import load_names

    model_dir = trained_run / "model"
    trainer = OnDeviceTrainer(model_dir)
    m = trainer.manifest
    ds = load_names(trained_run / "test_names")
    rng = np.random.default_rng(17)
    b = trainer.batch
    sel = rng.choice(len(ds.names), TRAINER_STEPS * b, replace=False)
    x = m.vocab.encode([ds.names[i] for i in sel]).reshape(TRAINER_STEPS, b, -1)
    y = labels_for_model(ds, m.languages)[sel].astype(np.int32).reshape(TRAINER_STEPS, b)
    w = np.ones((TRAINER_STEPS, b), np.float32)
    w[-1, b // 2 :] = 0.0  # a padded last batch, as fixed_batches makes
    start = trainer.flat_weights()
    start = (start + rng.normal(0, 0.05, start.shape)).astype(np.float32)
    path = tmp_path_factory.mktemp("arm64-trainer-input") / "input.npz"
    np.savez(path, start=start, x=x, y=y, w=w, lr=np.float32(TRAINER_LR))
    return path


def _trainer_run(
    python: list[str],
    group: str,
    model_dir: Path,
    inputs: Path,
    out: Path,
    env: dict[str, str] | None = None,
) -> tuple[dict, dict[str, np.ndarray]]:
    run_timed(
        group,
        "trainers",
        [*python, str(DRIVERS / "trainer_driver.py"), str(model_dir), str(inputs), str(out)],
        timeout=600,
        env=env,
    )
    report = json.loads((out / "report.json").read_text())
    with np.load(out / "weights.npz") as f:
        return report, {k: f[k] for k in f.files}


# -- the emulated Pi -------------------------------------------------------------------------------


def test_emulated_pi_has_the_edge_set_only_and_imports_no_tensorflow(
    edge_sessions: dict[str, tuple[dict, dict]], arm64_userland: Pi
) -> None:
    pi, _ = edge_sessions["aarch64"]
    x86, _ = edge_sessions["x86_64"]
    release = arm64_userland.release
    assert pi["platform"]["machine"] == "aarch64"
    assert pi["platform"]["python"].startswith(PI_PYTHON[release])
    assert pi["platform"]["libc"].startswith("glibc ")
    assert pi["tensorflow"]["import_tensorflow"] == "ModuleNotFoundError"
    assert not any(pi["tensorflow"]["installed"].values()), pi["tensorflow"]
    site = arm64_userland.site
    for key in ("edge_from", "model_from"):  # the installed wheel, not the checkout
        assert Path(pi["platform"][key]).is_relative_to(site), pi["platform"]
    # Inference on ai-edge-litert; training on tflite-runtime where it has wheels (Python 3.11:
    # Bookworm and x86), else on ai-edge-litert (Trixie's 3.13), lr fed as [1] (edge/runtime.py).
    assert pi["platform"]["runtime"] == x86["platform"]["runtime"] == "ai_edge_litert"
    assert pi["platform"]["training_runtime"] == PI_TRAINING_RUNTIME[release]
    assert x86["platform"]["training_runtime"] == "tflite_runtime"
    assert pi["tf_modules_loaded"] == [] and x86["tf_modules_loaded"] == []
    FIGURES.setdefault(release, {})["aarch64_platform"] = pi["platform"]


def logit_tolerance(kind: str, x86: tuple[dict, dict]) -> float:
    """How far an aarch64 logit may be from x86's, for the same artifact and name.

    float: FLOAT_ATOL (XNNPACK's float kernels sum in another order on NEON than on AVX).
    dynamic: the artifact's own quantisation error on x86 (max |dynamic - float| there): its
    activations are quantised at run time, and a rounding tie can go the other way on NEON.
    int8: INT8_LEVELS steps of the int8 output (plus float32 rounding of the dequantised
    value). ARM's and x86's int8 kernels round their requantisations differently, and not only
    at the output: an ADD, MUL or LOGISTIC inside the unrolled GRU may land one level apart, and
    the recurrence carries that through the remaining steps. A CI run of a 16-step model saw 2
    levels (4 of 3,602 predictions differing); the test also checks the integer levels
    themselves and how many predictions differ.
    """
    report, arrays = x86
    if kind == "float":
        return FLOAT_ATOL
    if kind == "dynamic":
        return float(np.abs(arrays["logits_dynamic"] - arrays["logits_float"]).max())
    scale = report["output_quantization"]["int8"]["scale"]
    return INT8_LEVELS * scale + float(np.abs(arrays["logits_int8"]).max()) * 2.0**-22


def int8_levels(logits: np.ndarray, quantization: dict) -> np.ndarray:
    """The int8 output levels the dequantised logits came from."""
    return np.rint(logits / quantization["scale"]).astype(np.int64) + quantization["zero_point"]


def test_every_inference_artifact_gives_the_x86_metrics_on_aarch64(
    edge_sessions: dict[str, tuple[dict, dict]], arm64_userland: Pi
) -> None:
    pi, pi_arrays = edge_sessions["aarch64"]
    x86, x86_arrays = edge_sessions["x86_64"]
    labels = x86_arrays["labels"]
    np.testing.assert_array_equal(pi_arrays["labels"], labels)
    figures: dict[str, dict] = {}
    FIGURES.setdefault(arm64_userland.release, {})["artifacts"] = (
        figures  # filled as it goes: kept even when an assertion fails
    )
    for kind in KINDS:
        pi_logits, x86_logits = pi_arrays[f"logits_{kind}"], x86_arrays[f"logits_{kind}"]
        assert pi_logits.shape == x86_logits.shape and len(x86_logits) == len(labels)
        # The Pi computed its metrics from exactly these logits, as x86 would have.
        n_classes = pi_logits.shape[1]
        for report, logits in ((pi, pi_logits), (x86, x86_logits)):
            expected = classification_metrics(labels, logits.argmax(axis=1), n_classes)
            got = {k: v for k, v in report["eval"][kind].items() if k in expected}
            assert got == expected, kind
        diff = float(np.abs(pi_logits - x86_logits).max())
        tolerance = logit_tolerance(kind, edge_sessions["x86_64"])
        flipped = int(np.count_nonzero(pi_logits.argmax(axis=1) != x86_logits.argmax(axis=1)))
        figures[kind] = {
            "max_abs_logit_diff": diff,
            "tolerance": tolerance,
            "predictions_differing": flipped,
            "n": len(labels),
            "accuracy_aarch64": pi["eval"][kind]["accuracy"],
            "accuracy_x86": x86["eval"][kind]["accuracy"],
        }
        assert diff <= tolerance, (kind, diff, tolerance)
        if kind == "int8":
            quantization = x86["output_quantization"]["int8"]
            assert pi["output_quantization"]["int8"] == quantization
            levels = np.abs(
                int8_levels(pi_logits, quantization) - int8_levels(x86_logits, quantization)
            )
            assert levels.max() <= INT8_LEVELS, levels.max()
            figures[kind]["max_level_diff"] = int(levels.max())
            figures[kind]["outputs_one_level_off"] = int(np.count_nonzero(levels))
        if kind == "float":  # same predictions, hence the very same metrics
            assert flipped == 0
        else:  # quantised: a near-tie may go the other way, rarely
            assert flipped <= MAX_FLIPPED_FRACTION * len(labels), (kind, flipped)
            assert pi["eval"]["float"] == x86["eval"]["float"]


def test_on_device_training_on_aarch64_lowers_the_loss_and_tracks_x86(
    edge_sessions: dict[str, tuple[dict, dict]], arm64_userland: Pi
) -> None:
    pi, pi_arrays = edge_sessions["aarch64"]
    x86, x86_arrays = edge_sessions["x86_64"]
    losses = pi["losses"]
    assert losses[-1] < losses[0] * 0.9, losses
    np.testing.assert_allclose(losses, x86["losses"], rtol=0, atol=FLOAT_ATOL)
    assert pi["restored_exactly"] and x86["restored_exactly"]
    # Restoring gives back the untrained model's outputs bit for bit.
    np.testing.assert_array_equal(pi_arrays["restored_logits"], pi_arrays["infer_logits"])
    assert not np.allclose(pi_arrays["trained_logits"], pi_arrays["infer_logits"])
    np.testing.assert_allclose(
        pi_arrays["trained_logits"], x86_arrays["trained_logits"], atol=FLOAT_ATOL
    )
    weight_diff = 0.0
    for i in range(x86["num_weights"]):
        initial, trained = pi_arrays[f"initial_{i}"], pi_arrays[f"trained_{i}"]
        # get_weights reads the same train.tflite: identical bits on both architectures.
        assert initial.dtype == x86_arrays[f"initial_{i}"].dtype
        np.testing.assert_array_equal(initial, x86_arrays[f"initial_{i}"])
        np.testing.assert_allclose(trained, x86_arrays[f"trained_{i}"], rtol=0, atol=FLOAT_ATOL)
        weight_diff = max(weight_diff, float(np.abs(trained - x86_arrays[f"trained_{i}"]).max()))
    FIGURES.setdefault(arm64_userland.release, {})["training"] = {
        "losses_aarch64": losses,
        "losses_x86": x86["losses"],
        "max_abs_trained_weight_diff": weight_diff,
        "max_abs_trained_logit_diff": float(
            np.abs(pi_arrays["trained_logits"] - x86_arrays["trained_logits"]).max()
        ),
    }


def test_secagg_client_tests_and_known_answer_vector_pass_on_aarch64(
    arm64_userland: Pi, tmp_path: Path
) -> None:
    pi = arm64_userland
    out = tmp_path / "pytest.json"
    run_timed(
        pi.release,
        "secagg tests",
        [
            *pi.python,
            str(DRIVERS / "run_pytest.py"),
            str(out),
            "-p",
            "no:cacheprovider",
            "-q",
            *EMULATED_SECAGG_TESTS,
        ],
        timeout=900,
        env=pi.env,
    )
    report = json.loads(out.read_text())
    assert report["exit_status"] == 0 and not report["failed"], report
    assert report["machine"] == "aarch64"
    assert set(report["outcomes"]) == {"passed"}, report["outcomes"]  # nothing skipped
    assert Path(report["edge_from"]).is_relative_to(pi.site), report
    assert Path(report["federated_from"]).is_relative_to(pi.site), report
    assert report["tf_modules_loaded"] == []
    FIGURES.setdefault(pi.release, {})["aarch64_secagg_tests_passed"] = report["outcomes"]["passed"]


def test_secagg_rounds_give_byte_identical_messages_on_aarch64_and_x86(
    secagg_rounds: dict, arm64_userland: Pi
) -> None:
    pi, x86 = secagg_rounds["aarch64"], secagg_rounds["x86_64"]
    assert pi["platform"]["machine"] == "aarch64" and x86["platform"]["machine"] == "x86_64"
    # The driver's "kat" round is the known-answer test's round, message for message.
    assert x86["rounds"]["kat"]["digest"] == kat_constant()
    for name, x86_round in x86["rounds"].items():
        pi_round = pi["rounds"][name]
        first = next(
            (
                i
                for i, (a, b) in enumerate(
                    zip(pi_round["message_sha256"], x86_round["message_sha256"], strict=False)
                )
                if a != b
            ),
            None,
        )
        assert pi_round["messages"] == x86_round["messages"], name
        assert first is None, f"{name}: message {first} differs between aarch64 and x86"
        assert pi_round["digest"] == x86_round["digest"], name
        assert pi_round["result"] == x86_round["result"], name
    FIGURES.setdefault(arm64_userland.release, {})["secagg"] = {
        name: {
            "messages": r["messages"],
            "digest_aarch64": pi["rounds"][name]["digest"],
            "digest_x86": r["digest"],
        }
        for name, r in x86["rounds"].items()
    }


# -- both trainers ---------------------------------------------------------------------------------
def test_both_trainers_on_aarch64_take_x86s_train_tflite_step_and_the_probe_picks_tflite(
    arm64_userland: Pi,
    trained_run: Path,
    trainer_input: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """From the same start weights and batches, TRAINER_STEPS SGD steps of the TFLite trainer
    (lr as [1]) and of the numpy trainer on the emulated Pi give x86's train.tflite weights to
    TRAINER_ATOL; the Pi's trainer probe (edge.trainer_choice) picks the TFLite trainer."""
    pi = arm64_userland
    model_dir = trained_run / "model"
    out = tmp_path_factory.mktemp(f"arm64-trainers-{pi.release}")
    if "trainers" not in _X86:
        _X86["trainers"] = _trainer_run(
            [sys.executable, "-P"], "x86", model_dir, trainer_input, out / "x86_64"
        )
    x86, x86_w = _X86["trainers"]  # type: ignore[misc]
    report, weights = _trainer_run(
        pi.python, pi.release, model_dir, trainer_input, out / "aarch64", pi.env
    )
    assert report["platform"]["machine"] == "aarch64"
    assert report["platform"]["training_runtime"] == PI_TRAINING_RUNTIME[pi.release]
    reference = x86_w["tflite"]  # x86's train.tflite step (tflite-runtime 2.14)
    assert x86["platform"]["training_runtime"] == "tflite_runtime"
    with np.load(trainer_input) as f:
        start = f["start"]
    assert float(np.abs(reference - start).max()) > 1e-3  # it did train
    figures: dict[str, object] = {"steps": report["steps"], "lr": TRAINER_LR}
    FIGURES.setdefault(pi.release, {})["trainers"] = figures  # kept even if an assert fails
    diffs = {}
    for name, w in weights.items():
        diffs[name] = float(np.abs(w - reference).max())
    figures["max_abs_weight_diff_vs_x86_tflite"] = diffs
    figures["x86_numpy_vs_x86_tflite"] = float(np.abs(x86_w["numpy"] - reference).max())
    figures["losses_first_last"] = {k: [v[0], v[-1]] for k, v in report["losses"].items()}
    figures["probe"] = report["probe"]
    figures["runtimes"] = report["platform"]["runtimes"]
    figures["numpy"] = report["platform"]["numpy"]
    figures["seconds"] = {k: round(v, 2) for k, v in report["timings"].items()}
    assert {"tflite", "numpy"} <= set(diffs)
    for name, diff in diffs.items():
        assert diff <= TRAINER_ATOL, (pi.release, name, diff)
    assert report["probe"]["trainer"] == "tflite", report["probe"]
    assert x86["probe"]["trainer"] == "tflite", x86["probe"]


# -- the edge fleet client -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def both_pis(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pi]:
    return {release: set_up(release, tmp_path_factory) for release in RELEASES}


def test_mixed_fleet_of_trixie_bookworm_and_x86_pis_completes_secure_rounds(
    both_pis: dict[str, Pi], data_dir: Path, tmp_path: Path
) -> None:
    """`pifed demo --arm64-edges 2 --arm64-release trixie,bookworm`: an emulated Trixie Pi
    (Python 3.13), an emulated Bookworm Pi (3.11), both with the edge set only, and an x86 Pi,
    against the x86 coordinator on loopback with TLS, through two full rounds: train, secure
    aggregation, on-device evaluation and the gate. Every training reply names its trainer."""
    from fleet_harness import write_device_names

    from model.dataset import load_names

    ds = load_names(data_dir)
    subset = write_device_names(
        ds, np.random.default_rng(0).permutation(len(ds))[:3000], tmp_path / "names"
    )
    out = tmp_path / "demo"
    t = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pifed",
            "demo",
            "--data",
            str(subset),
            "--out",
            str(out),
            "--devices",
            "3",
            "--arm64-edges",
            "2",
            "--arm64-release",
            "trixie,bookworm",
            "--rounds",
            "2",
            "--units",
            "8",
            "--embed-dim",
            "8",
            "--local-epochs",
            "1",
            "--gate-min-accuracy",
            "0",
            "--gate-min-balanced-accuracy",
            "0",
            "--stage-timeout",
            "300",
        ],
        capture_output=True,
        text=True,
        timeout=1100,
    )
    seconds = round(time.perf_counter() - t, 1)
    TIMINGS.setdefault("mixed fleet", {})["pifed demo, 2 rounds"] = seconds
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads((out / "report" / "metrics.json").read_text())
    rounds = report["rounds"]
    assert [r["status"] for r in rounds] == ["completed", "completed"], rounds
    assert all(len(r["survivors"]) == 3 for r in rounds)  # both emulated Pis' updates are in
    pis = {}
    for dev in ("pi-1", "pi-2", "pi-3"):
        events = [
            json.loads(line)
            for line in (out / "devices" / dev / "edge.log").read_text().splitlines()
            if line.startswith("{")
        ]
        started = next(e for e in events if e["event"] == "started")
        trainers = [e["trainer"] for e in events if e["event"] == "trainer"]
        pis[dev] = {
            "machine": started["machine"],
            "python": started["python"][:4],
            "trainer": trainers,
        }
        # every stage of the active protocol (Stage), in training's session and in the
        # evaluate stage's quality session, in each of the 2 rounds
        assert sum(e["event"] == "secagg" for e in events) == 2 * 2 * len(Stage)
        assert sum(e["event"] == "evaluate" for e in events) == 2
    assert {d: (p["machine"], p["python"]) for d, p in pis.items()} == {
        "pi-1": ("aarch64", "3.13"),
        "pi-2": ("aarch64", "3.11"),
        "pi-3": ("x86_64", "3.11"),
    }, pis
    # The probe runs once per train program: it picked tflite on every Pi.
    assert all(p["trainer"] and set(p["trainer"]) == {"tflite"} for p in pis.values()), pis
    # The coordinator heard the same from each training reply (TrainReply.trainer), each round.
    replies = [s.get("trainers") for s in report["summaries"]]
    assert [sorted(r.values()) for r in replies] == [["tflite"] * 3] * 2, replies
    FIGURES["mixed_fleet"] = {
        "seconds": seconds,
        "rounds": len(rounds),
        "pis": pis,
        "trainers_in_replies": replies,
    }


# -- what the Pi installs --------------------------------------------------------------------------


def test_aarch64_edge_set_has_no_tensorflow_and_is_smaller_than_the_x86_full_set(
    arm64_userland: Pi,
) -> None:
    site = arm64_userland.site
    dists = set()
    for meta in site.glob("*.dist-info/METADATA"):
        for line in meta.read_text(errors="replace").splitlines():
            if line.startswith("Name: "):
                dists.add(line[6:].strip().lower().replace("_", "-"))
                break
    # tflite-runtime has no wheel for Python >= 3.12: pyproject's marker leaves it out on Trixie.
    expected = EDGE_DISTS - ({"tflite-runtime"} if arm64_userland.release == "trixie" else set())
    assert expected.issubset(dists), expected - dists
    assert arm64_userland.release == "bookworm" or "tflite-runtime" not in dists
    assert not dists & HEAVY_DISTS, dists & HEAVY_DISTS
    x86_site = Path(sysconfig.get_paths()["purelib"])
    assert any(x86_site.glob("tensorflow-*.dist-info")), f"{x86_site} is not the full venv"
    edge_bytes = dir_size(site)
    full_bytes = dir_size(x86_site)
    assert edge_bytes < full_bytes
    mb = 1 << 20
    FIGURES.setdefault(arm64_userland.release, {})["install_size_mb"] = {
        "aarch64_edge_set": round(edge_bytes / mb, 1),
        "aarch64_edge_set_without_pycache": round(dir_size(site, skip="__pycache__") / mb, 1),
        "x86_full_venv_site_packages": round(full_bytes / mb, 1),
        "edge_over_full": round(edge_bytes / full_bytes, 4),
        "aarch64_distributions": sorted(dists),
        "x86_site": str(x86_site),
    }
