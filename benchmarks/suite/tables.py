"""Markdown tables and number cells for the report: the one format every suite's section uses.

Stdlib only, like every ``bench_<suite>_report`` module: a results directory can be re-rendered
on a machine that has none of the measured runtimes.
"""

from __future__ import annotations

from typing import Any


def table(head: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (header, rule, one line per row), newline-terminated."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def num(x: Any, fmt: str = ".1f") -> str:
    """A number in ``fmt``, or ``-`` when it was not measured (None)."""
    return "-" if x is None else format(x, fmt)


def mib(x: Any) -> str:
    """Bytes as MiB with one decimal, or ``-``."""
    return "-" if x is None else f"{x / 2**20:.1f}"


def cells(items: list[dict[str, Any]], columns: list[tuple[str, str | None]]) -> list[list[str]]:
    """Table cells: each column a key and a number format (None: the value as text)."""
    return [[str(it[k]) if fmt is None else num(it[k], fmt) for k, fmt in columns] for it in items]
