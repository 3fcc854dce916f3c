"""`pifed server` / `pifed demo`: every timeout is a flag, and --help shows every default."""

from __future__ import annotations

import argparse
import re

import pytest

from federated.fleet_config import FleetConfig
from pifed import cli, flags

TIMEOUTS = {
    "--eval-timeout": "eval_timeout",
    "--deploy-timeout": "deploy_timeout",
    "--wait-devices-timeout": "wait_devices_timeout",
    "--poll-wait": "poll_wait",
    "--live-window": "live_window",
    "--stage-timeout": "stage_timeout",
    "--train-timeout": "train_timeout",
}


def _sub(name: str) -> argparse.ArgumentParser:
    parser = cli.build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return subs.choices[name]


@pytest.mark.parametrize("command", ["server", "demo"])
def test_help_shows_every_default(command: str) -> None:
    p = _sub(command)
    text = p.format_help()
    # One block per option: its line in the list and the help lines under it.
    blocks = {
        m.group(1): " ".join(m.group(0).split())
        for m in re.finditer(r"^  (-[-\w]+)(?:.*\n)(?:^ {6,}.*\n)*", text, re.M)
    }
    for action in p._actions:
        if not action.option_strings or action.default is None or action.default is False:
            continue
        if action.dest == "help":
            continue
        flag = action.option_strings[0]
        assert "default" in blocks[flag], f"{command} {flag}: {blocks[flag]!r}"
    for flag in TIMEOUTS:
        assert flag in text


def test_every_timeout_flag_reaches_the_fleet_config() -> None:
    p = _sub("server")
    argv = ["--db", "x.db", "--insecure"]
    for i, flag in enumerate(TIMEOUTS):
        argv += [flag, str(30.0 + i)]
    cfg = flags.fleet_config(p.parse_args(argv))
    assert isinstance(cfg, FleetConfig)
    for i, field in enumerate(TIMEOUTS.values()):
        assert getattr(cfg, field) == 30.0 + i
    defaults = flags.fleet_config(p.parse_args(["--db", "x.db", "--insecure"]))
    for field in TIMEOUTS.values():
        assert getattr(defaults, field) == getattr(FleetConfig(), field)


def test_a_live_window_inside_the_poll_wait_is_refused() -> None:
    p = _sub("server")
    args = p.parse_args(["--db", "x", "--insecure", "--poll-wait", "10", "--live-window", "5"])
    with pytest.raises(flags.FleetFlagError, match="--live-window"):
        flags.fleet_config(args)
