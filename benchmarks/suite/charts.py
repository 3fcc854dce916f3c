"""What a suite's report module hands the report for each PNG: a file name and a drawing.

The report imports matplotlib lazily (a Pi with the edge set alone has none) and passes its
``pyplot`` to each drawing, so no ``bench_<suite>_report`` module imports matplotlib itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

#: ``(file name, draw(plt, path))``: one chart a suite's results can be drawn as.
Chart = tuple[str, Callable[[Any, Path], None]]


def save(plt: Any, fig: Any, path: Path) -> None:
    """Lay the figure out, write it as a 100-dpi PNG and free it."""
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
