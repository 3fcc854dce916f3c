"""Guest side (edge set only): run every signature of each .tflite in a child process and
report OK or the signal that killed it, so one crash does not stop the bisect.

    PIFED_ARM64_RELEASE=trixie tools/arm64/python tools/arm64/bisect/run_signature.py \\
        [--resolver AUTO|BUILTIN|BUILTIN_REF|BUILTIN_WITHOUT_DEFAULT_DELEGATES] [--threads N] \\
        [--mode runner|no_resize|lift_scalars] [--runtime ai_edge_litert|tflite_runtime] FILE...

Modes: `runner` calls the SignatureRunner as edge/trainer.py does; `no_resize` skips its
ResizeInputTensor calls (private wrapper API; every input keeps the shape in the file);
`lift_scalars` feeds each rank-0 input as shape [1] through the public runner instead.
Inputs are seeded random values of each input's shape and dtype.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import subprocess
import sys
from typing import Any

import numpy as np


def _feed(details: dict[str, Any], lift: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    feed = {}
    for name, d in sorted(details.items()):
        shape, dt = tuple(int(s) for s in d["shape"]), d["dtype"]
        if np.issubdtype(dt, np.integer):
            value = rng.integers(0, 3, size=shape).astype(dt)
        else:
            value = np.asarray(rng.random(shape) * 0.5, dt)
        feed[name] = value.reshape(1) if lift and value.ndim == 0 else value
    return feed


def run_one(path: str, sig: str, args: argparse.Namespace) -> str:
    """In this process: run one signature twice and describe the outputs."""
    mod = importlib.import_module(f"{args.runtime}.interpreter")
    kw: dict[str, Any] = {"num_threads": args.threads}
    if args.resolver != "AUTO":
        kw["experimental_op_resolver_type"] = getattr(mod.OpResolverType, args.resolver)
    interp = mod.Interpreter(model_path=path, **kw)
    runner = interp.get_signature_runner(sig)
    feed = _feed(runner.get_input_details(), args.mode == "lift_scalars")
    for _ in range(2):
        if args.mode == "no_resize":
            w, sg = runner._interpreter_wrapper, runner._subgraph_index
            w.AllocateTensors(sg)
            for k, v in feed.items():
                w.SetTensor(runner._inputs[k], v, sg)
            w.Invoke(sg)
            out = {k: w.GetTensor(i, sg) for k, i in runner._outputs}
        else:
            out = runner(**feed)
    shapes = {k: list(np.shape(v)) for k, v in feed.items()}
    firsts = {k: np.asarray(v).ravel()[:2].round(5).tolist() for k, v in out.items()}
    return f"inputs {shapes} -> {firsts}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("files", nargs="*")
    ap.add_argument("--resolver", default="AUTO")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--mode", default="runner", choices=("runner", "no_resize", "lift_scalars"))
    ap.add_argument("--runtime", default="ai_edge_litert")
    ap.add_argument("--signature", action="append", help="only these (default: all)")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(run_one(args.child[0], args.child[1], args), flush=True)
        return
    mod = importlib.import_module(f"{args.runtime}.interpreter")
    opts = ["--resolver", args.resolver, "--mode", args.mode, "--runtime", args.runtime]
    if args.threads is not None:
        opts += ["--threads", str(args.threads)]
    print(f"{args.runtime} resolver={args.resolver} threads={args.threads} mode={args.mode}")
    crashed = 0
    for path in args.files:
        for sig in mod.Interpreter(model_path=path).get_signature_list():
            if args.signature and sig not in args.signature:
                continue
            # sys.executable is tools/arm64/python (guest/sitecustomize.py), so this works
            # without binfmt_misc.
            proc = subprocess.run(
                [sys.executable, os.path.abspath(__file__), *opts, "--child", path, sig],
                capture_output=True,
                text=True,
            )
            rc = proc.returncode
            if rc == 0:
                what = proc.stdout.strip().splitlines()[-1]
            elif rc < 0:  # qemu re-raises the guest's fatal signal on itself
                what = f"CRASH {signal.Signals(-rc).name}"
            else:
                what = f"ERROR exit {rc}: {proc.stderr.strip().splitlines()[-1:]}"
            crashed += rc != 0
            print(f"  {os.path.basename(path)}:{sig:<16} {what}", flush=True)
    sys.exit(1 if crashed else 0)


if __name__ == "__main__":
    main()
