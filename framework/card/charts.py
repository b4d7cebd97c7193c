"""The card's charts: matplotlib figures rendered to inline SVG.

Figures are made without pyplot (no global state, no GUI backend) and saved
as SVG with text kept as text, so a page holds them as they are, and a
browser can read their numbers. Each bar or segment that stands for a
count is tagged with an id ``<name>-mark-<n>``, and `Chart.marks` says how
many there are, so a test can check that every mark was drawn.
"""

from __future__ import annotations

import contextlib
import io
import itertools
from collections.abc import Mapping, Sequence

import attrs
import matplotlib
from matplotlib.figure import Figure

__all__ = [
    "Chart",
    "grouped_bars",
    "histogram_bars",
    "interval_bars",
    "ranked_bars",
    "stacked_shares",
]


def _style() -> contextlib.AbstractContextManager[None]:
    return matplotlib.rc_context(
        {
            "svg.fonttype": "none",  # text as <text>, not glyph paths
            "svg.hashsalt": "datathon-etl",  # the same ids on every run
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )


NULL_COLOUR = "#d9d9d9"
"""The colour of NULL values (absent labels)."""
_PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1")
_NAMED = {
    "positive": "#e15759",
    "negative": "#4e79a7",
    "uncertain": "#f28e2b",
    "not_mentioned": "#bab0ac",
    "true": "#e15759",
    "false": "#4e79a7",
}


@attrs.frozen
class Chart:
    """An SVG chart.

    Attributes:
        name: Its id on the page; its marks' ids start with it.
        svg: The ``<svg>`` element, without XML prologue.
        marks: How many marks (bars, segments) it draws, one per non-zero count.
    """

    name: str
    svg: str
    marks: int


def colour(code: str, index: int) -> str:
    """The colour of a value: fixed for the usual label codes, else from a palette."""
    if code == "null":
        return NULL_COLOUR
    return _NAMED.get(code, _PALETTE[index % len(_PALETTE)])


def grouped_bars(
    name: str,
    categories: Sequence[str],
    series: Mapping[str, Sequence[int]],
    *,
    ylabel: str,
) -> Chart:
    """Vertical bars: one group per category, one bar per series in it, labelled with its count."""
    with _style():
        figure = Figure(figsize=(max(3.0, 0.6 + 0.45 * len(categories) * len(series)), 2.6))
        axes = figure.add_subplot()
        width = 0.8 / max(1, len(series))
        marks = 0
        for s, (label, values) in enumerate(series.items()):
            offsets = [i + (s - (len(series) - 1) / 2) * width for i in range(len(categories))]
            bars = axes.bar(offsets, values, width, label=label, color=colour(label, s))
            for bar, value in zip(bars, values, strict=True):
                if value:
                    bar.set_gid(f"{name}-mark-{marks}")
                    marks += 1
            axes.bar_label(bars, labels=[str(v) if v else "" for v in values], fontsize=7)
        axes.set_xticks(range(len(categories)), list(categories))
        axes.set_ylabel(ylabel)
        axes.margins(y=0.15)
        if len(series) > 1:
            axes.legend(frameon=False, fontsize=8)
        return Chart(name, _svg(figure), marks)


def stacked_shares(
    name: str,
    rows: Sequence[str],
    segments: Mapping[str, Sequence[int]],
    *,
    title: str,
) -> Chart:
    """Horizontal bars, one per row, each split into segments by share of the row's total."""
    with _style():
        figure = Figure(figsize=(7.0, max(1.6, 0.8 + 0.22 * len(rows))))
        axes = figure.add_subplot()
        totals = [sum(values[r] for values in segments.values()) for r in range(len(rows))]
        left = [0.0] * len(rows)
        marks = 0
        positions = range(len(rows))
        for s, (label, values) in enumerate(segments.items()):
            shares = [v / t if t else 0.0 for v, t in zip(values, totals, strict=True)]
            bars = axes.barh(
                positions, shares, left=left, label=label, color=colour(label, s), height=0.7
            )
            for bar, value in zip(bars, values, strict=True):
                if value:
                    bar.set_gid(f"{name}-mark-{marks}")
                    marks += 1
            left = [a + b for a, b in zip(left, shares, strict=True)]
        axes.set_yticks(positions, list(rows))
        axes.invert_yaxis()
        axes.set_xlim(0, 1)
        axes.set_xlabel("share of images")
        axes.legend(
            frameon=False,
            fontsize=7,
            ncols=len(segments),
            loc="lower left",
            bbox_to_anchor=(0, 1.0),
        )
        axes.set_title(title, loc="left", fontsize=9, pad=18)
        return Chart(name, _svg(figure), marks)


def histogram_bars(
    name: str, edges: Sequence[float], counts: Sequence[int], *, xlabel: str
) -> Chart:
    """A histogram from bin edges and counts."""
    with _style():
        figure = Figure(figsize=(4.5, 2.4))
        axes = figure.add_subplot()
        widths = [b - a for a, b in itertools.pairwise(edges)]
        bars = axes.bar(edges[:-1], counts, widths, align="edge", color=_PALETTE[0])
        marks = 0
        for bar, value in zip(bars, counts, strict=True):
            if value:
                bar.set_gid(f"{name}-mark-{marks}")
                marks += 1
        axes.set_xlabel(xlabel)
        axes.set_ylabel("images")
        return Chart(name, _svg(figure), marks)


def ranked_bars(name: str, rows: Sequence[str], counts: Sequence[int], *, xlabel: str) -> Chart:
    """Horizontal bars, one per row from the top, each labelled with its count."""
    with _style():
        figure = Figure(figsize=(6.0, 1.2 + 0.2 * len(rows)))
        axes = figure.add_subplot()
        bars = axes.barh(range(len(rows)), counts, color=_PALETTE[0], height=0.7)
        marks = 0
        for bar, value in zip(bars, counts, strict=True):
            if value:
                bar.set_gid(f"{name}-mark-{marks}")
                marks += 1
        axes.bar_label(bars, labels=[f"{v:,}" for v in counts], fontsize=7, padding=2)
        axes.set_yticks(range(len(rows)), list(rows))
        axes.invert_yaxis()
        axes.margins(x=0.12)
        axes.set_xlabel(xlabel)
        return Chart(name, _svg(figure), marks)


def _svg(figure: Figure) -> str:
    figure.tight_layout()
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None})
    text = out.getvalue()
    return text[text.index("<svg") :]


def interval_bars(
    name: str,
    rows: Sequence[str],
    series: Mapping[str, Sequence[tuple[float, float | None, float | None] | None]],
    *,
    xlabel: str,
) -> Chart:
    """Horizontal bars with interval whiskers: per row one bar per series (None: no bar)."""
    with _style():
        figure = Figure(figsize=(7.0, 0.9 + 0.2 * len(rows) * max(1, len(series))))
        axes = figure.add_subplot()
        height = 0.8 / max(1, len(series))
        marks = 0
        for s, (label, values) in enumerate(series.items()):
            shown = [(r, v) for r, v in enumerate(values) if v is not None]
            positions = [r + (s - (len(series) - 1) / 2) * height for r, _ in shown]
            widths = [v[0] for _, v in shown]
            errors = [
                [v[0] - v[1] if v[1] is not None else 0.0 for _, v in shown],
                [v[2] - v[0] if v[2] is not None else 0.0 for _, v in shown],
            ]
            bars = axes.barh(
                positions, widths, height, xerr=errors, label=label, color=colour(label, s + 1)
            )
            for bar in bars:
                bar.set_gid(f"{name}-mark-{marks}")
                marks += 1
        axes.set_yticks(range(len(rows)), list(rows))
        axes.invert_yaxis()
        axes.set_xlim(0, 1)
        axes.axvline(0.5, color="#999999", linewidth=0.8, linestyle="--")
        axes.set_xlabel(xlabel)
        if len(series) > 1:
            axes.legend(frameon=False, fontsize=7, loc="lower left", bbox_to_anchor=(1.0, 0.0))
        return Chart(name, _svg(figure), marks)
