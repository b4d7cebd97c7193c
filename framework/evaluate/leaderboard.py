"""The leaderboard: teams ranked by mean AUROC, as a table and as text.

`rank` orders the rankable teams (scored, complete or partial coverage
accepted) by mean AUROC, best first; the others follow unranked. The table
(`LEADERBOARD_SCHEMA`) has, per team, one row per label and one row with a
NULL label for the mean; the text prints, per team, its coverage and its
labels with their intervals (``not ranked`` where the split has too few
positives or negatives), then the ranking.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from datathon_etl.framework.evaluate.score import Settings, TeamResult
from datathon_etl.framework.tables import DESCRIPTION_KEY

__all__ = ["LEADERBOARD_SCHEMA", "format_leaderboard", "leaderboard_table", "rank"]


def _field(name: str, type_: pa.DataType, text: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={DESCRIPTION_KEY: text.encode()})


LEADERBOARD_SCHEMA = pa.schema(
    [
        _field("team", pa.string(), "The team (its submission's name).", nullable=False),
        _field("rank", pa.int64(), "1 = best mean AUROC; NULL: not ranked (see refused)."),
        _field("label", pa.string(), "The label; NULL on the team's mean AUROC row."),
        _field(
            "auroc",
            pa.float64(),
            "AUROC of the label's scores over its positive and negative images (ties count "
            "one half), or the mean over ranked labels; NULL without both outcomes.",
        ),
        _field("ci_low", pa.float64(), "95% bootstrap interval (resampling patients): low end."),
        _field("ci_high", pa.float64(), "95% bootstrap interval: high end."),
        _field("positives", pa.int64(), "Predicted images positive for the label."),
        _field("negatives", pa.int64(), "Predicted images negative for the label."),
        _field("excluded", pa.int64(), "Predicted images left out (uncertain, NULL label)."),
        _field(
            "ranked",
            pa.bool_(),
            "Whether the label counts in the mean (enough positives and negatives in the split).",
        ),
        _field("predicted", pa.int64(), "Images of the evaluation split the team predicted."),
        _field("split_images", pa.int64(), "Images in the evaluation split."),
        _field("refused", pa.string(), "Why the submission was not scored or not ranked; NULL."),
    ],
    metadata={"table": "leaderboard"},
)
"""The leaderboard table: per team, a row per label and a mean row."""


def rank(results: Sequence[TeamResult], settings: Settings) -> list[tuple[int | None, TeamResult]]:
    """(rank, result), best mean AUROC first; unrankable teams last, rank None."""
    rankable = sorted(
        (r for r in results if r.rankable(settings)), key=lambda r: (-(r.mean or 0.0), r.team)
    )
    others = [r for r in results if not r.rankable(settings)]
    return [(i + 1, r) for i, r in enumerate(rankable)] + [(None, r) for r in others]


def _why_unranked(result: TeamResult, settings: Settings) -> str | None:
    if result.refused:
        return result.refused
    if result.coverage and result.coverage.missing and not settings.allow_partial:
        return (
            f"{result.coverage.missing} images of the split not predicted "
            "(--allow_partial_coverage ranks it)"
        )
    if result.mean is None:
        return "no ranked label has an AUROC"
    return None


def leaderboard_table(results: Sequence[TeamResult], settings: Settings) -> pa.Table:
    """The leaderboard as `LEADERBOARD_SCHEMA` rows."""
    rows: list[dict[str, Any]] = []
    for place, result in rank(results, settings):
        coverage = result.coverage
        common = {
            "team": result.team,
            "rank": place,
            "predicted": coverage.predicted if coverage else None,
            "split_images": coverage.images if coverage else None,
            "refused": _why_unranked(result, settings),
        }
        rows.append(
            {
                **common,
                "label": None,
                "auroc": result.mean,
                "ci_low": result.mean_low,
                "ci_high": result.mean_high,
            }
        )
        rows += [
            {
                **common,
                "label": s.label,
                "auroc": s.auroc,
                "ci_low": s.low,
                "ci_high": s.high,
                "positives": s.positives,
                "negatives": s.negatives,
                "excluded": s.excluded,
                "ranked": s.ranked,
            }
            for s in result.labels
        ]
    return pa.Table.from_pylist(rows, schema=LEADERBOARD_SCHEMA)


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _interval(low: float | None, high: float | None) -> str:
    return "" if low is None or high is None else f"[{low:.3f}, {high:.3f}]"


def _aligned(lines: Sequence[Sequence[str]], left: int = 1) -> list[str]:
    """Columns padded to their widest cell: the first ``left`` and the last to the left."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return [
        "  ".join(
            cell.ljust(width) if i < left or i == len(line) - 1 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    ]


def format_leaderboard(results: Sequence[TeamResult], settings: Settings) -> str:
    """Per team its coverage and label table, then the ranking."""
    text: list[str] = []
    needed = settings.min_positives
    for result in results:
        coverage = result.coverage
        head = f"== {result.team} ({result.source})"
        if coverage:
            head += f": {coverage.describe(settings.split)}"
        text.append(head)
        if result.refused:
            text.append(f"refused: {result.refused}")
            continue
        header = ("label", "AUROC", "95% CI", "positives", "negatives", "excluded", "")
        lines = [header] + [
            (
                s.label,
                _number(s.auroc),
                _interval(s.low, s.high),
                str(s.positives),
                str(s.negatives),
                str(s.excluded),
                "" if s.ranked else f"not ranked: under {needed} positives or negatives",
            )
            for s in result.labels
        ]
        text += _aligned(lines)
        ranked = sum(s.ranked for s in result.labels)
        text.append(
            f"mean AUROC {_number(result.mean)} {_interval(result.mean_low, result.mean_high)} "
            f"over {ranked} ranked of {len(result.labels)} labels".replace("  ", " ")
        )
    text.append("== leaderboard")
    board = [("rank", "team", "mean AUROC", "95% CI", "coverage", "")]
    for place, result in rank(results, settings):
        coverage = result.coverage
        share = f"{coverage.predicted}/{coverage.images}" if coverage else "-"
        board.append(
            (
                str(place) if place else "-",
                result.team,
                _number(result.mean),
                _interval(result.mean_low, result.mean_high),
                share,
                _why_unranked(result, settings) or "",
            )
        )
    text += _aligned(board, left=2)
    return "\n".join(text)
