"""Flag definitions shared by subcommands: one flag, one name and one help text everywhere."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from model.dataset import DATA_ENV


def add_data(p: argparse.ArgumentParser) -> None:
    """``--data DIR``: a folder of ``<Language>.txt`` files."""
    p.add_argument(
        "--data",
        metavar="DIR",
        help=f"folder of <Language>.txt files (default: ${DATA_ENV}, then the download cache)",
    )


def add_seed(p: argparse.ArgumentParser) -> None:
    """``--seed N``: every run is reproducible from it."""
    p.add_argument("--seed", type=int, default=0, help="seed for splits, init and shuffling")


def add_out(p: argparse.ArgumentParser, what: str = "run directory to write") -> None:
    """``--out DIR``: where a command writes its results."""
    p.add_argument("--out", metavar="DIR", required=True, help=what)


def add_model(p: argparse.ArgumentParser) -> None:
    """``--model FILE.tflite``: an inference artifact with its manifest beside it."""
    p.add_argument(
        "--model",
        metavar="FILE.tflite",
        required=True,
        help="an inference artifact; its manifest.json must sit beside it",
    )


def add_json(p: argparse.ArgumentParser) -> None:
    """``--json``: machine-readable output."""
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")


def add_db(p: argparse.ArgumentParser) -> None:
    """``--db FILE``: the coordinator's SQLite state."""
    p.add_argument(
        "--db",
        metavar="FILE",
        required=True,
        help="coordinator state (SQLite; blobs live beside it in FILE.blobs/)",
    )


def add_certs(p: argparse._ActionsContainer) -> None:
    """``--certs DIR``: the server certificate a coordinator or dashboard serves TLS with."""
    p.add_argument("--certs", metavar="DIR", help="server.pem/server.key from `pifed certs`")


def add_tls_server(p: argparse.ArgumentParser) -> None:
    """``--certs DIR`` / ``--insecure`` for the coordinator."""
    g = p.add_mutually_exclusive_group(required=True)
    add_certs(g)
    g.add_argument(
        "--insecure",
        action="store_true",
        help="plaintext gRPC (tests on one machine only; tokens travel in clear)",
    )


def add_dashboard(p: argparse.ArgumentParser) -> None:
    """``--dashboard HOST:PORT`` and ``--operator-token FILE`` of ``pifed server`` (the
    dashboard beside a running coordinator, off unless asked for)."""
    p.add_argument(
        "--dashboard",
        metavar="HOST:PORT",
        help="serve the web dashboard here (a bare PORT or 127.0.0.1:PORT: this machine only; "
        "any other address serves HTTPS with --certs; see docs/dashboard.md); default: off",
    )
    p.add_argument(
        "--operator-token",
        metavar="FILE",
        help="file (mode 600) holding the operator's token: enables rollback, revoke and "
        "enroll in the dashboard; without it the dashboard is read-only",
    )


@dataclass(frozen=True)
class DashboardFlags:
    """Where and how a command serves the dashboard, as its flags gave it."""

    address: str | None  # --dashboard HOST:PORT; None: no dashboard
    certs: Path | None  # --certs DIR (HTTPS off loopback; the coordinator's TLS too)
    operator_token: Path | None  # --operator-token FILE; None: read-only


def dashboard_from_args(args: argparse.Namespace) -> DashboardFlags:
    """The dashboard flags of ``pifed server`` or ``pifed dashboard`` (which has no
    ``--operator-token``: read-only), as paths.

    Raises :class:`FleetFlagError` for an operator token without a dashboard to use it in.
    """
    token = getattr(args, "operator_token", None)
    if token and not args.dashboard:
        raise FleetFlagError("--operator-token needs --dashboard HOST:PORT")
    return DashboardFlags(
        address=args.dashboard,
        certs=Path(args.certs) if args.certs else None,
        operator_token=Path(token) if token else None,
    )


def add_round_settings(p: argparse.ArgumentParser) -> None:
    """The round settings the fleet and the simulation share (``RoundSettings``), one default
    each: ``pifed server``, ``pifed demo`` and ``pifed simulate`` all take these."""
    from federated.lr_schedule import SCHEDULES
    from federated.round_settings import RoundSettings  # coordinator side, TF-free

    d = RoundSettings()
    p.add_argument(
        "--local-epochs",
        type=int,
        default=d.local_epochs,
        metavar="E",
        help="local SGD epochs per client per round (default: %(default)s)",
    )
    p.add_argument(
        "--local-steps",
        type=int,
        default=d.local_steps,
        metavar="K",
        help="at most K SGD batches per client per round (default: whole local epochs)",
    )
    p.add_argument(
        "--client-lr",
        type=float,
        default=d.client_lr,
        help="on-device SGD learning rate (default: %(default)s)",
    )
    p.add_argument(
        "--client-lr-schedule",
        choices=SCHEDULES,
        default=d.client_lr_schedule,
        help="client rate across the run's rounds: constant, or cosine decay towards 0 "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--server-lr",
        type=float,
        default=d.server_lr,
        help="FedAvg server learning rate (default: %(default)s)",
    )
    p.add_argument(
        "--gate-min-accuracy",
        type=float,
        default=d.gate.min_accuracy,
        help="fleet on-device accuracy a version needs to be promoted (default: %(default)s)",
    )
    p.add_argument(
        "--gate-tolerance",
        type=float,
        default=d.gate.tolerance,
        help="how far below the deployed version's accuracy a candidate may fall "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--gate-min-balanced-accuracy",
        type=float,
        default=d.gate.min_balanced_accuracy,
        help="fleet on-device balanced accuracy (mean per-language recall) a version also "
        "needs; 0 turns the check off (default: %(default)s)",
    )
    p.add_argument(
        "--gate-balanced-tolerance",
        type=float,
        default=d.gate.balanced_tolerance,
        help="how far below the deployed version's balanced accuracy a candidate may fall "
        "(default: %(default)s)",
    )


def round_settings(args: argparse.Namespace) -> object:
    """The ``RoundSettings`` of the flags :func:`add_round_settings` defined.

    Raises ``RoundSettingsError`` or ``GateError`` (both ``ValueError``) naming the bad flag.
    """
    from federated.gate import GateConfig
    from federated.round_settings import RoundSettings

    return RoundSettings(
        local_epochs=args.local_epochs,
        local_steps=args.local_steps,
        client_lr=args.client_lr,
        client_lr_schedule=args.client_lr_schedule,
        server_lr=args.server_lr,
        gate=GateConfig(
            min_accuracy=args.gate_min_accuracy,
            tolerance=args.gate_tolerance,
            min_balanced_accuracy=args.gate_min_balanced_accuracy,
            balanced_tolerance=args.gate_balanced_tolerance,
        ),
    )


def add_fleet_rounds(p: argparse.ArgumentParser) -> None:
    """Round flags of ``pifed server`` and ``pifed demo``: the shared round settings plus the
    fleet's own (devices, secure-aggregation clip, deployed artifact, timeouts)."""
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--rounds",
        type=int,
        default=3,
        metavar="N",
        help="completed rounds the fleet database should have; a restarted coordinator runs "
        "only the missing ones (default: %(default)s)",
    )
    g.add_argument(
        "--more-rounds",
        type=int,
        default=None,
        metavar="K",
        help="run until K more rounds than the database holds now have completed",
    )
    p.add_argument(
        "--min-devices",
        type=int,
        default=2,
        help="devices a round waits for",
    )
    add_round_settings(p)
    p.add_argument(
        "--clip",
        type=float,
        default=1.0,
        help="secure-aggregation clip bound per update coordinate (default: %(default)s)",
    )
    p.add_argument(
        "--deploy-kind",
        choices=("float", "dynamic", "int8"),
        default="float",
        help="the artifact devices evaluate and deploy (default: %(default)s)",
    )
    p.add_argument(
        "--stage-timeout",
        type=float,
        default=60.0,
        help="seconds each secure-aggregation stage waits for devices (default: %(default)s)",
    )
    p.add_argument(
        "--train-timeout",
        type=float,
        default=600.0,
        help="seconds devices have to train before AdvertiseKeys closes (default: %(default)s)",
    )
    from federated.fleet_config import FleetConfig

    defaults = FleetConfig()  # the timeouts' defaults: one each, kept there
    for flag, help_text in _FLEET_TIMEOUTS:
        p.add_argument(
            flag,
            type=float,
            default=getattr(defaults, flag[2:].replace("-", "_")),
            metavar="S",
            help=help_text + " (default: %(default)s)",
        )


#: The fleet's timeout flags (seconds, FleetConfig's defaults): flag, then what it bounds.
_FLEET_TIMEOUTS = (
    ("--eval-timeout", "seconds the evaluate stage waits for the devices' metrics"),
    (
        "--deploy-timeout",
        "seconds the deploy stage waits for live devices to install a promoted version",
    ),
    (
        "--wait-devices-timeout",
        "seconds a round waits for --min-devices connected devices before it fails",
    ),
    (
        "--poll-wait",
        "seconds a device's long-poll is held open when there is nothing for it",
    ),
    (
        "--live-window",
        "a device counts as connected if it polled within this many seconds; must exceed "
        "--poll-wait",
    ),
    (
        "--silence-timeout",
        "a Pi busy on a task heartbeats every 2 s; one silent this long is gone and its "
        "round goes on without it",
    ),
)


class DefaultsShown(argparse.HelpFormatter):
    """``--help`` shows every option's default: appended where the help does not say it
    (nothing for flags without a value or with no default)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "%(default)" in text
            or "default:" in text
            or action.default is None
            or action.default is False
            or action.default == argparse.SUPPRESS
            or not action.option_strings
        ):
            return text
        return text + " (default: %(default)s)"


class FleetFlagError(ValueError):
    """The round flags of ``pifed server`` / ``pifed demo`` make no valid FleetConfig, or the
    dashboard flags of ``pifed server`` do not fit together."""


def fleet_config(args: argparse.Namespace) -> object:
    """A FleetConfig from the shared round flags (imported lazily: coordinator side).

    Raises :class:`FleetFlagError` (exit 2, before anything is written) on a bad setting.
    """
    try:
        return _fleet_config(args)
    except ValueError as e:
        raise FleetFlagError(f"invalid round settings: {e}") from e


def _fleet_config(args: argparse.Namespace) -> object:
    from federated.coordinator import FleetConfig

    return FleetConfig(
        rounds=args.rounds,
        more_rounds=args.more_rounds,
        min_devices=args.min_devices,
        settings=round_settings(args),  # type: ignore[arg-type]
        clip_bound=args.clip,
        deploy_kind=args.deploy_kind,
        stage_timeout=args.stage_timeout,
        train_timeout=args.train_timeout,
        eval_timeout=args.eval_timeout,
        deploy_timeout=args.deploy_timeout,
        wait_devices_timeout=args.wait_devices_timeout,
        poll_wait=args.poll_wait,
        live_window=args.live_window,
        silence_timeout=args.silence_timeout,
    )
