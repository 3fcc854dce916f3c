"""``pifed predict``: runs on a Pi with a TFLite runtime only."""

from __future__ import annotations

import argparse
import json
import sys

from pifed import flags


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``pifed predict``."""
    p = sub.add_parser("predict", help="top-3 languages for each name (runs on a Pi)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--model",
        metavar="FILE.tflite",
        help="an inference artifact; its manifest.json must sit beside it",
    )
    src.add_argument(
        "--state", metavar="DIR", help="a Pi's state folder: use the fleet's deployed version"
    )
    p.add_argument("--top", type=int, default=3, help="how many languages to show")
    flags.add_json(p)
    p.add_argument("names", nargs="+", metavar="NAME")


def run(args: argparse.Namespace) -> int:
    """Print the top languages with probabilities for each name."""
    from edge.runtime import Classifier

    if args.state:
        problem = _state_problem(args.state)
        if problem is not None:
            print(f"pifed predict: error: {problem}", file=sys.stderr)
            return 2
        from edge.state import DeviceState

        deployed = DeviceState(args.state).deployed_dir()
        if deployed is None:
            raise FileNotFoundError(
                f"{args.state} has no deployed model yet: start `pifed edge` and wait for "
                "the fleet to deploy one (or pass --model FILE.tflite)"
            )
        model = next(iter(sorted(deployed.glob("model_*.tflite"))))
    else:
        model = args.model
    clf = Classifier(model)
    results = clf.predict(list(args.names), top=args.top)
    if args.json:
        print(
            json.dumps(
                {
                    n: [{"language": lang, "p": round(p, 6)} for lang, p in r]
                    for n, r in zip(args.names, results, strict=True)
                }
            )
        )
        return 0
    for name, ranked in zip(args.names, results, strict=True):
        print(name)
        for lang, p in ranked:
            print(f"  {lang:<12} {p:6.1%}")
    return 0


def _state_problem(state_dir: str) -> str | None:
    """What a Pi owner can do about a missing state folder or a damaged deployed model (they
    cannot re-export one), or None when the deployed model is whole or not there yet."""
    from pathlib import Path

    from edge.state import DeviceState

    if not Path(state_dir).is_dir():
        return (
            f"there is no state folder at {state_dir}: pass the --state folder `pifed edge` "
            "runs with"
        )
    problem = DeviceState(state_dir).link_problem("current")
    if problem is None:
        return None
    return (
        f"the deployed model in {state_dir} is damaged ({problem}): start `pifed edge` (it "
        "re-fetches it from the coordinator), or ask the operator to `pifed rollback`"
    )
