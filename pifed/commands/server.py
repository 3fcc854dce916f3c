"""``pifed server``: the fleet coordinator."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import warnings
from pathlib import Path

from pifed import flags, oplog
from pifed.flags import FleetFlagError

log = logging.getLogger("pifed.server")

DEFAULT_LANGUAGES = (
    "Arabic",
    "Chinese",
    "Czech",
    "Dutch",
    "English",
    "French",
    "German",
    "Greek",
    "Irish",
    "Italian",
    "Japanese",
    "Korean",
    "Polish",
    "Portuguese",
    "Russian",
    "Scottish",
    "Spanish",
    "Vietnamese",
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``pifed server --db FILE (--certs DIR | --insecure) [--model DIR] [round flags]``."""
    p = sub.add_parser(
        "server",
        help="run the fleet coordinator (gRPC, TLS by default)",
        formatter_class=flags.DefaultsShown,
    )
    flags.add_db(p)
    flags.add_tls_server(p)
    p.add_argument(
        "--listen",
        default="127.0.0.1:7443",
        metavar="HOST:PORT",
        help="address to serve on (0.0.0.0:7443 to reach Pis on the LAN)",
    )
    p.add_argument(
        "--model",
        metavar="DIR",
        help="initial model folder (manifest + artifacts); default: a fresh model "
        "initialised into FILE.model/ on first start",
    )
    p.add_argument("--units", type=int, default=128, help="GRU units of a fresh model")
    p.add_argument("--embed-dim", type=int, default=64, help="embedding size of a fresh model")
    flags.add_fleet_rounds(p)
    p.add_argument(
        "--exit-after-rounds",
        action="store_true",
        help="stop once the rounds are done (default: keep serving deployments)",
    )
    flags.add_seed(p)
    flags.add_dashboard(p)
    p.add_argument(
        "--log-json",
        action="store_true",
        help="log one JSON object per line (ts, level, logger, msg, event fields) on stderr "
        "(default: readable lines)",
    )


def initial_model(db: str, model: str | None, units: int, embed_dim: int, seed: int) -> Path:
    """The given model folder, or a fresh one created once beside the database."""
    if model:
        return Path(model)
    folder = Path(db).with_name(Path(db).name + ".model")
    if not (folder / "manifest.json").is_file():
        try:
            import tensorflow  # noqa: F401
        except ImportError as e:
            raise ImportError(
                f"no --model and no {folder}: building a starting model needs TensorFlow, "
                "which this coordinator does not have. Fix: make a model folder on a machine "
                "with the full set (`python -m federated.exporter DIR`, or `pifed train`), copy "
                "it here and pass --model DIR (README: a Pi as the coordinator)"
            ) from e
        with oplog.progress(f"first start: building the starting model in {folder} (TensorFlow)"):
            from federated.exporter import init_model

            init_model(folder, DEFAULT_LANGUAGES, seed=seed, units=units, embed_dim=embed_dim)
    return folder


def run(args: argparse.Namespace) -> int:
    """Serve and run rounds until done (or SIGTERM); the log is on stderr, a time on every
    line (``--log-json``: one JSON object a line)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow can load
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"tensorflow\..*")  # the converter's UserWarnings
    oplog.setup(json_lines=args.log_json)
    from federated.fleet import FleetServer
    from federated.service import check_address_free

    cfg = flags.fleet_config(args)  # a bad flag stops here, before anything is written
    check_address_free(args.listen)  # so does a taken port, before a model is built
    served = flags.dashboard_from_args(args)
    if served.address:  # a bad dashboard address, certificate or token file too
        from federated.dashboard.wiring import check_dashboard

        try:
            check_dashboard(served.address, served.certs, served.operator_token)
        except ValueError as e:
            raise FleetFlagError(str(e)) from e
    from federated.store import Store

    Store(args.db).close()  # and a foreign or damaged database (exit 2, left untouched)
    log.info("configuration: %s", cfg.summary())  # type: ignore[attr-defined]
    model_dir = initial_model(args.db, args.model, args.units, args.embed_dim, args.seed)
    fleet = FleetServer.start(
        args.db,
        model_dir,
        cfg,  # type: ignore[arg-type]
        args.listen,
        served.certs,
        oplog.event,
    )
    dash = None
    if served.address:
        try:
            from federated.dashboard.wiring import dashboard_beside

            dash = dashboard_beside(
                fleet,
                served.address,
                served.certs,
                operator_token=served.operator_token,
                on_event=oplog.event,
            )
        except BaseException:
            fleet.close()
            raise
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    runner = fleet.run_rounds_in_background()
    try:
        while not done.is_set():
            if not runner.is_alive() and args.exit_after_rounds:
                break
            done.wait(0.5)
    finally:
        if dash is not None:
            dash.close()
        fleet.close()
    log.info("stopped")
    return 0
