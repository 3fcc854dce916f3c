"""Server-side SVG line charts: no JavaScript library to vendor, nothing fetched at run time,
and a chart is part of the HTML the page arrives with (readable without scripts)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 220
PAD_L, PAD_R, PAD_T, PAD_B = 44, 12, 12, 28
COLOURS = ("#2563eb", "#d97706", "#059669", "#7c3aed")


@dataclass(frozen=True)
class Series:
    """One line: (x, y) points, y in [0, 1]."""

    label: str
    points: Sequence[tuple[float, float]]


def line_chart(series: Sequence[Series], marks: Sequence[float] = (), x_label: str = "") -> str:
    """An SVG of the series on a 0..1 axis; ``marks`` are x positions drawn as dashed rules
    (promotions). Empty series give a chart that says so."""
    xs = [x for s in series for x, _ in s.points]
    out = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="{escape(x_label)} chart">'
    ]
    if not xs:
        out.append(
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no data yet</text>'
        )
        return "".join([*out, "</svg>"])
    lo, hi = min(xs), max(xs)
    span = (hi - lo) or 1.0
    w, h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B

    def px(x: float) -> float:
        return PAD_L + (x - lo) / span * w

    def py(y: float) -> float:
        return PAD_T + (1 - max(0.0, min(1.0, y))) * h

    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = py(tick)
        out.append(
            f'<line x1="{PAD_L}" x2="{WIDTH - PAD_R}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:.2f}</text>'
        )
    for x in marks:
        out.append(
            f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{PAD_T}" y2="{PAD_T + h}" '
            'class="mark"><title>promoted</title></line>'
        )
    for i, s in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in s.points)
        out.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{pts}">'
            f"<title>{escape(s.label)}</title></polyline>"
        )
        lx = PAD_L + 8 + 170 * i
        out.append(
            f'<rect x="{lx}" y="{HEIGHT - 15}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{lx + 14}" y="{HEIGHT - 6}">{escape(s.label)}</text>'
        )
    out.append(
        f'<text x="{WIDTH - PAD_R}" y="{HEIGHT - 6}" text-anchor="end">{escape(x_label)} '
        f"{lo:g}-{hi:g}</text>"
    )
    return "".join([*out, "</svg>"])


def heatmap(labels: Sequence[str], counts: Sequence[Sequence[int]]) -> str:
    """An SVG confusion matrix: row = true language, column = predicted; each cell shaded by
    its share of the row (the row's recall on the diagonal) and titled with its count."""
    n = len(labels)
    if n == 0:
        return (
            f'<svg class="chart heatmap" viewBox="0 0 {WIDTH} 60" role="img" '
            'xmlns="http://www.w3.org/2000/svg" aria-label="confusions">'
            f'<text x="{WIDTH / 2}" y="30" text-anchor="middle">no data yet</text></svg>'
        )
    cell, left, top = max(12, min(28, 560 // n)), 96, 96
    size_w, size_h = left + n * cell + 8, top + n * cell + 8
    out = [
        f'<svg class="chart heatmap" viewBox="0 0 {size_w} {size_h}" role="img" '
        'xmlns="http://www.w3.org/2000/svg" aria-label="confusion matrix">'
    ]
    for j, lab in enumerate(labels):
        x = left + j * cell + cell / 2
        out.append(
            f'<text x="{x:.1f}" y="{top - 6}" transform="rotate(-60 {x:.1f} {top - 6})">'
            f"{escape(lab)}</text>"
        )
    for i, lab in enumerate(labels):
        row = counts[i]
        total = sum(row) or 1
        y = top + i * cell
        out.append(
            f'<text x="{left - 6}" y="{y + cell * 0.7:.1f}" text-anchor="end">{escape(lab)}</text>'
        )
        for j, c in enumerate(row):
            share = c / total
            colour = "37,99,235" if i == j else "217,119,6"
            out.append(
                f'<rect x="{left + j * cell}" y="{y}" width="{cell - 1}" height="{cell - 1}" '
                f'fill="rgba({colour},{0.08 + 0.92 * share:.3f})" class="cell">'
                f"<title>{escape(lab)} as {escape(labels[j])}: {int(c)} ({share:.1%})</title>"
                "</rect>"
            )
    return "".join([*out, "</svg>"])
