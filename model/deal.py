"""Deal a names data set to a fleet's devices: what ``pifed demo`` and ``pifed data split`` share.

A global test part may be kept back first (by distinct name, ``model.split``); the rest is dealt
to the devices with a ``--partition`` scheme (``model.partition``). Each device gets all of its
rows, its training and its held-out names alike: ``pifed edge`` draws its own held-out part from
its folder. A name that carries several languages is kept wholly on one device, so no surname is
on two Pis. TensorFlow-free: a Pi owner may run it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.dataset import NamesDataset
from model.partition import MIN_ROWS_PER_DEVICE, PartitionError, PartitionScheme, partition
from model.split import split_by_name


@dataclass(frozen=True)
class FleetDeal:
    """Row indices of ``ds``: one array per device, and the test part kept back from all."""

    devices: list[np.ndarray]
    test: np.ndarray


def one_device_per_name(ds: NamesDataset, parts: list[np.ndarray]) -> list[np.ndarray]:
    """Move every row of a name to the device holding its rarest language's row (the rule
    ``split_by_name`` strata follow), so a surname with several languages is on one device
    only, and a small language's home device (Scottish, which shares most names with English)
    keeps its names."""
    sizes = np.bincount(ds.labels, minlength=len(ds.languages))
    holder: dict[str, tuple[tuple[int, int], int]] = {}
    spread: set[str] = set()
    for dev, rows in enumerate(parts):
        for r in rows:
            name, lab = ds.names[int(r)], int(ds.labels[int(r)])
            key = (int(sizes[lab]), lab)
            if name in holder and holder[name][1] != dev:
                spread.add(name)
            if name not in holder or key < holder[name][0]:
                holder[name] = (key, dev)
    if not spread:
        return parts
    moved: list[list[int]] = [[] for _ in parts]
    kept: list[list[int]] = []
    for dev, rows in enumerate(parts):
        keep: list[int] = []
        for r in rows:
            name = ds.names[int(r)]
            target = holder[name][1] if name in spread else dev
            (keep if target == dev else moved[target]).append(int(r))
        kept.append(keep)
    return [np.asarray(k + m, dtype=np.int64) for k, m in zip(kept, moved, strict=True)]


def deal_to_devices(
    ds: NamesDataset,
    n_devices: int,
    scheme: str | PartitionScheme,
    seed: int,
    test_frac: float = 0.0,
) -> FleetDeal:
    """Keep back ``test_frac`` of the distinct names (0: none), deal the rest to ``n_devices``
    with ``scheme``; every row lands on exactly one device or in the test part."""
    if not 0.0 <= test_frac < 1.0:
        raise PartitionError(f"the held-out fraction must be in [0, 1), got {test_frac}")
    if test_frac > 0:
        train, test = split_by_name(ds, test_frac, seed)
    else:
        train, test = np.arange(len(ds), dtype=np.int64), np.zeros(0, dtype=np.int64)
    parts = partition(ds, train, n_devices, scheme, seed)
    rows = one_device_per_name(ds, [np.concatenate([p.train, p.holdout]) for p in parts])
    short = [i + 1 for i, r in enumerate(rows) if len(r) < MIN_ROWS_PER_DEVICE]
    if short:
        raise PartitionError(
            f"device(s) {short} would hold fewer than {MIN_ROWS_PER_DEVICE} names; "
            "use fewer devices"
        )
    return FleetDeal(rows, test)
