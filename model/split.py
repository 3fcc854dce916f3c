"""Name-disjoint, language-stratified, seeded splits.

The data set repeats names (and 469 names carry more than one language), so a split by row leaks
test names into training. We split *distinct names*: every row of a name lands on the same side.
A name's stratum is its rarest language, so the small languages keep test examples.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from model.dataset import NamesDataset


def split_by_name(
    ds: NamesDataset, test_frac: float, seed: int, idx: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, test) over ``idx`` (default: all rows), with no name on both sides."""
    if not 0.0 < test_frac < 1.0:
        raise ValueError(f"test_frac must be in (0, 1), got {test_frac}")
    rows = np.arange(len(ds)) if idx is None else np.asarray(idx)
    by_name: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        by_name[ds.names[int(r)]].append(int(r))
    sizes = np.bincount(ds.labels, minlength=len(ds.languages))
    strata: dict[int, list[str]] = defaultdict(list)
    for name in sorted(by_name):
        langs = {int(ds.labels[r]) for r in by_name[name]}
        strata[min(langs, key=lambda lab: (sizes[lab], lab))].append(name)
    rng = np.random.default_rng(seed)
    test_names: set[str] = set()
    for stratum in sorted(strata):
        names = strata[stratum]
        order = rng.permutation(len(names))
        k = round(test_frac * len(names))
        if len(names) >= 2:
            k = min(max(k, 1), len(names) - 1)
        test_names.update(names[i] for i in order[:k])
    test = np.array(sorted(r for n in test_names for r in by_name[n]), dtype=np.int64)
    train = np.array(
        sorted(r for n, rs in by_name.items() if n not in test_names for r in rs), dtype=np.int64
    )
    return train, test
