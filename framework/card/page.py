"""The card as one HTML page, from `templates/card.html.j2`.

Autoescaped: every text from the data (paths, quarantine details, ids) is
escaped; only the charts' SVG, made here by matplotlib, goes in as markup.
"""

from __future__ import annotations

import jinja2
from markupsafe import Markup

from datathon_etl.framework.card.charts import Chart
from datathon_etl.framework.card.content import Card
from datathon_etl.framework.card.leaderboard import Leaderboard

__all__ = ["render", "render_leaderboard"]

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("datathon_etl.framework.card", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def _chart(chart: Chart) -> Markup:
    # The SVG is matplotlib's output for numbers and names the card chose; it holds no script.
    return Markup('<figure class="chart" id="{}" data-marks="{}">{}</figure>').format(
        chart.name, chart.marks, Markup(chart.svg)
    )


def _number(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def render(card: Card) -> str:
    """The card's page, self-contained."""
    template = _ENV.get_template("card.html.j2")
    return template.render(card=card, subject=card.subject, chart=_chart, number=_number)


def _score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _interval(low: float | None, high: float | None) -> str:
    return "" if low is None or high is None else f"[{low:.3f}, {high:.3f}]"


def render_leaderboard(board: Leaderboard) -> str:
    """The leaderboard's page, self-contained."""
    template = _ENV.get_template("leaderboard.html.j2")
    return template.render(board=board, chart=_chart, score=_score, interval=_interval)
