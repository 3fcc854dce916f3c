"""``pifed edge``: run this Pi as a fleet member (a TFLite runtime only, no TensorFlow)."""

from __future__ import annotations

import argparse
import json
import platform
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from pifed import flags

#: The task kinds a drill's fault flag can pick (edge.tasks' kinds but idle).
FAULT_KINDS = ("train", "secagg", "evaluate", "deploy")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``pifed edge --server HOST:PORT --token-file F --data DIR --state DIR --ca F``."""
    p = sub.add_parser("edge", help="join a fleet: train, mask, evaluate, deploy (runs on a Pi)")
    p.add_argument("--server", metavar="HOST:PORT", help="the coordinator (required to run)")
    p.add_argument(
        "--identity",
        metavar="DIR",
        help="this Pi's device.key (mode 600) and device.cert from its enrollment",
    )
    p.add_argument(
        "--authority",
        metavar="FILE",
        help="the fleet's enrollment authority.pub, pinned (default: DIR/authority.pub)",
    )
    p.add_argument(
        "--init-identity",
        action="store_true",
        help="make this Pi's signing key in --identity DIR, print its public key for "
        "`pifed enroll --public-key`, and exit (the key never leaves the Pi)",
    )
    token = p.add_mutually_exclusive_group()
    token.add_argument(
        "--token-file",
        metavar="FILE",
        help="file holding this device's token from `pifed enroll` (mode 600); default: "
        "$PIFED_TOKEN",
    )
    token.add_argument(
        "--token",
        help="the token itself (visible to every local user in ps: prefer --token-file)",
    )
    flags.add_data(p)
    p.add_argument("--state", metavar="DIR", help="where the deployed model and caches live")
    p.add_argument("--ca", metavar="FILE", help="the coordinator's ca.pem, pinned")
    p.add_argument("--insecure", action="store_true", help="plaintext gRPC (tests only)")
    flags.add_seed(p)
    p.add_argument(
        "--holdout-frac",
        type=float,
        default=0.2,
        help="share of local names held out for on-device evaluation",
    )
    p.add_argument("--max-bytes", type=int, default=64 << 20, help="largest message accepted")
    p.add_argument(
        "--fault-exit-after",
        metavar="STAGE",
        default=None,
        help="drills and tests: die right after answering STAGE (train, "
        "AdvertiseKeysRequest, ShareKeysRequest, MaskedInputRequest, ...)",
    )
    for flag, what in (
        (
            "--fault-hang-in",
            "the first task of KIND never finishes (the Pi stays busy and heartbeats), so a "
            "drill can kill it mid-task",
        ),
        (
            "--fault-crash-in",
            "the worker dies of SIGSEGV inside the first task of KIND, as a native crash; the "
            "supervisor reports it and restarts the worker without the fault",
        ),
    ):
        p.add_argument(
            flag,
            metavar="KIND",
            choices=FAULT_KINDS,
            default=None,
            help="drills and tests: " + what,
        )


def run(args: argparse.Namespace) -> int:
    """Poll until SIGTERM/SIGINT; one JSON line per task on stderr."""
    from edge.device_identity import IdentityError, load_identity
    from edge.device_token import TokenError, resolve_token
    from edge.fleet_client import DeviceRejected, EdgeClient, EdgeConfig
    from edge.runtime import RuntimeMissing
    from edge.state import DeviceState
    from edge.supervisor import is_worker, supervise, watch_parent
    from edge.trainer_choice import TrainerChoiceError, check_runtimes
    from edge.transport import ChannelConfig
    from model.dataset import resolve_data_dir

    if args.init_identity:
        return _init_identity(args)
    missing = [f for f in ("server", "state", "identity") if not getattr(args, f)]
    if missing or bool(args.ca) == bool(args.insecure):  # exactly one of --ca, --insecure
        need = ", ".join(f"--{f}" for f in missing) or "one of --ca FILE / --insecure"
        print(f"pifed edge: error: give {need}", file=sys.stderr)
        return 2
    try:
        token = resolve_token(args.token, args.token_file)
        identity = load_identity(args.identity, args.authority)
    except (TokenError, IdentityError) as e:
        print(f"pifed edge: error: {e}", file=sys.stderr)
        return 2

    def log(event: dict[str, Any]) -> None:
        print(json.dumps(event, sort_keys=True), file=sys.stderr, flush=True)

    channel = ChannelConfig(
        args.server,
        token,
        Path(args.ca) if args.ca else None,
        insecure=args.insecure,
        max_bytes=args.max_bytes,
    )
    if not is_worker():
        try:
            runtimes = check_runtimes()
        except (RuntimeMissing, TrainerChoiceError) as e:
            print(f"pifed edge: error: this Pi cannot take part: {e}", file=sys.stderr)
            return 2
        log({"event": "runtimes", "summary": runtimes})
        # This process supervises; the fleet client runs in a worker it restarts after a
        # native crash (edge/supervisor.py). The worker gets the same arguments.
        argv = args.argv[args.argv.index("edge") + 1 :]
        return supervise(argv, channel, DeviceState(args.state), log)
    watch_parent()

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    client = EdgeClient(
        channel,
        resolve_data_dir(args.data),
        args.state,
        EdgeConfig(
            holdout_frac=args.holdout_frac,
            seed=args.seed,
            exit_after=args.fault_exit_after,
            crash_in=args.fault_crash_in,
            hang_in=args.fault_hang_in,
        ),
        on_event=log,
        identity=identity,
    )
    log(
        {
            "event": "started",
            "device_id": identity.certificate.device_id,
            "names": len(client._ds),
            "deployed": client.state.deployed_version(),
            "machine": platform.machine(),
            "python": platform.python_version(),
        }
    )
    try:
        client.run(stop)
    except DeviceRejected as e:
        print(f"pifed edge: error: the coordinator refused this device: {e}", file=sys.stderr)
        return 3
    return 0


def _init_identity(args: argparse.Namespace) -> int:
    """Make the Pi's signing key; print the public key (stdout) and what to do next."""
    from edge.device_identity import IdentityError, format_public_key, init_identity

    if not args.identity:
        print("pifed edge: error: --init-identity needs --identity DIR", file=sys.stderr)
        return 2
    try:
        key = init_identity(args.identity)
    except IdentityError as e:
        print(f"pifed edge: error: {e}", file=sys.stderr)
        return 2
    print(format_public_key(key.public))
    print(
        f"wrote {Path(args.identity) / 'device.key'} (mode 600). Enroll this public key on the "
        "coordinator (`pifed enroll NAME --public-key HEX ...`), then copy the certificate it "
        f"writes to {Path(args.identity) / 'device.cert'} and the fleet's authority.pub beside it",
        file=sys.stderr,
    )
    return 0
