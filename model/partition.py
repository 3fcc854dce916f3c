"""Partitions of the training rows across N simulated or real devices.

Schemes (the string form is what ``--partition`` takes):
- ``iid``: a uniform random deal.
- ``dirichlet:ALPHA``: label skew; each language's rows are split by proportions drawn from
  Dirichlet(ALPHA); small ALPHA means each device sees few languages (Hsu et al., 2019).
- ``language``: each device has a home language (largest languages first) and about 90% of its
  rows come from it, like Pis in different countries; languages without a home device (fewer
  devices than languages) are spread evenly.
- ``sorted-halves``: the original tutorial's split; rows sorted by language, cut into N
  contiguous parts.

Every device then keeps a name-disjoint local held-out part for on-device evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.dataset import NamesDataset
from model.split import split_by_name

SCHEMES = ("iid", "dirichlet:ALPHA", "language", "sorted-halves")
HOME_SHARE = 0.9
MIN_ROWS_PER_DEVICE = 4


class PartitionError(ValueError):
    """A partition scheme is unknown or cannot give every device data."""


@dataclass(frozen=True)
class DevicePartition:
    """One device's rows: what it trains on and what it holds out for on-device evaluation."""

    device: int
    train: np.ndarray
    holdout: np.ndarray


@dataclass(frozen=True)
class PartitionScheme:
    """A parsed ``--partition`` value."""

    kind: str
    alpha: float = 0.0

    @classmethod
    def parse(cls, text: str) -> PartitionScheme:
        """Parse ``iid``, ``dirichlet:ALPHA``, ``language`` or ``sorted-halves``."""
        if text in ("iid", "language", "sorted-halves"):
            return cls(text)
        if text.startswith("dirichlet:"):
            try:
                alpha = float(text.split(":", 1)[1])
            except ValueError:
                alpha = -1.0
            if alpha <= 0:
                raise PartitionError(
                    f"{text!r}: ALPHA must be a positive number, e.g. dirichlet:0.5"
                )
            return cls("dirichlet", alpha)
        raise PartitionError(f"unknown partition {text!r}; choose one of {', '.join(SCHEMES)}")

    def __str__(self) -> str:
        return f"dirichlet:{self.alpha:g}" if self.kind == "dirichlet" else self.kind


def _deal(
    ds: NamesDataset, rows: np.ndarray, n: int, scheme: PartitionScheme, rng: np.random.Generator
) -> list[np.ndarray]:
    labels = ds.labels[rows]
    if scheme.kind == "iid":
        return [np.sort(p) for p in np.array_split(rows[rng.permutation(len(rows))], n)]
    if scheme.kind == "sorted-halves":
        order = sorted(range(len(rows)), key=lambda i: (ds.languages[labels[i]], ds.names[rows[i]]))
        return [np.sort(p) for p in np.array_split(rows[order], n)]
    owner = np.empty(len(rows), dtype=np.int64)
    n_lang = len(ds.languages)
    if scheme.kind == "dirichlet":
        for lab in range(n_lang):
            (members,) = np.nonzero(labels == lab)
            members = members[rng.permutation(len(members))]
            props = rng.dirichlet(np.full(n, scheme.alpha))
            cuts = (np.cumsum(props)[:-1] * len(members)).astype(int)
            for dev, part in enumerate(np.split(members, cuts)):
                owner[part] = dev
    else:  # language
        by_size = sorted(range(n_lang), key=lambda lab: -int(np.sum(labels == lab)))
        homes: dict[int, list[int]] = {lab: [] for lab in range(n_lang)}
        for dev in range(n):
            homes[by_size[dev % n_lang]].append(dev)
        for lab in range(n_lang):
            (members,) = np.nonzero(labels == lab)
            pool = homes[lab] or list(range(n))  # no home device: spread evenly
            owner[members] = np.asarray(pool)[rng.integers(len(pool), size=len(members))]
        # Mix: the owners of a random (1 - HOME_SHARE) of rows are shuffled among themselves,
        # so every device keeps its size and is about HOME_SHARE home language.
        mixed = rng.choice(len(rows), round((1 - HOME_SHARE) * len(rows)), replace=False)
        owner[mixed] = owner[mixed][rng.permutation(len(mixed))]
    return [np.sort(rows[owner == dev]) for dev in range(n)]


def partition(
    ds: NamesDataset,
    train_rows: np.ndarray,
    n_devices: int,
    scheme: str | PartitionScheme,
    seed: int,
    holdout_frac: float = 0.2,
) -> list[DevicePartition]:
    """Deal ``train_rows`` to ``n_devices``; each keeps a name-disjoint local held-out part."""
    if n_devices < 1:
        raise PartitionError(f"n_devices must be >= 1, got {n_devices}")
    parsed = scheme if isinstance(scheme, PartitionScheme) else PartitionScheme.parse(scheme)
    rows = np.asarray(train_rows, dtype=np.int64)
    if len(rows) < n_devices * MIN_ROWS_PER_DEVICE:
        raise PartitionError(
            f"{len(rows)} training rows cannot give {n_devices} devices {MIN_ROWS_PER_DEVICE} "
            f"rows each; use fewer devices (at most {len(rows) // MIN_ROWS_PER_DEVICE})"
        )
    rng = np.random.default_rng(seed)
    for _attempt in range(20):
        parts = _deal(ds, rows, n_devices, parsed, rng)
        if min(len(p) for p in parts) >= MIN_ROWS_PER_DEVICE:
            break
    else:
        raise PartitionError(
            f"{parsed} left a device with fewer than {MIN_ROWS_PER_DEVICE} rows in 20 draws; "
            "use fewer devices or a larger ALPHA"
        )
    out = []
    for dev, part in enumerate(parts):
        train, hold = split_by_name(ds, holdout_frac, seed + 1 + dev, idx=part)
        out.append(DevicePartition(dev, train, hold))
    return out
