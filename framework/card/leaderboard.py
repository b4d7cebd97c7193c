"""The leaderboard's page content, read from the table `evaluate` writes.

One row per team and label plus a mean row (label NULL) per team
(`datathon_etl.framework.evaluate.leaderboard.LEADERBOARD_SCHEMA`), in
DuckDB or BigQuery.
"""

from __future__ import annotations

from typing import Any

import attrs

from datathon_etl.framework.card import charts
from datathon_etl.framework.card.tables import QueryTable

__all__ = ["Leaderboard", "TeamScores", "read_leaderboard"]


@attrs.frozen
class TeamScores:
    """One team's leaderboard rows.

    Attributes:
        team: The team.
        mean: Its mean-AUROC row (rank, auroc, ci_low, ci_high, coverage, refused).
        labels: Its per-label rows, by label.
    """

    team: str
    mean: dict[str, Any]
    labels: tuple[dict[str, Any], ...]


@attrs.frozen
class Leaderboard:
    """Everything the leaderboard page shows.

    Attributes:
        table: The leaderboard table's name.
        teams: Ranked teams first (by rank), then the others (by name).
        labels: Every label scored, by name.
        chart: Per label, each team's AUROC with its interval.
    """

    table: str
    teams: tuple[TeamScores, ...]
    labels: tuple[str, ...]
    chart: charts.Chart | None


def read_leaderboard(table: QueryTable, name: str) -> Leaderboard:
    """Reads a leaderboard table whole (a few rows a team)."""
    rows = table.query(f"SELECT * FROM {table.name}")
    by_team: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_team.setdefault(str(row["team"]), []).append(row)
    teams = []
    for team, team_rows in by_team.items():
        means = [r for r in team_rows if r["label"] is None]
        mean = means[0] if means else {"rank": None, "auroc": None}
        labelled = sorted((r for r in team_rows if r["label"] is not None), key=_label)
        teams.append(TeamScores(team, mean, tuple(labelled)))
    teams.sort(key=lambda t: (t.mean.get("rank") is None, t.mean.get("rank") or 0, t.team))
    labels = tuple(sorted({str(r["label"]) for r in rows if r["label"] is not None}))
    series = {
        t.team: [_interval(t, label) for label in labels]
        for t in teams
        if any(r["auroc"] is not None for r in t.labels)
    }
    chart = (
        charts.interval_bars("leaderboard", labels, series, xlabel="AUROC (95% interval)")
        if series
        else None
    )
    return Leaderboard(name, tuple(teams), labels, chart)


def _label(row: dict[str, Any]) -> str:
    return str(row["label"])


def _interval(team: TeamScores, label: str) -> tuple[float, float | None, float | None] | None:
    for row in team.labels:
        if row["label"] == label and row["auroc"] is not None:
            return float(row["auroc"]), row["ci_low"], row["ci_high"]
    return None
