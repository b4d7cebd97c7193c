"""The data card: what a processed data set holds, at a glance, as one page.

`write_card` (and ``datathon-etl card OUTPUT_DIR``) reads a run's outputs and
writes ``<output_dir>/_card.html``. One job per module: `tables` (the labels
table, DuckDB or BigQuery), `stats` (statistics in SQL both run),
`subject` (what the card describes: a declaration, or a query's
columns), `run_files` (manifest, quarantine), `thumbnails`, `charts` (matplotlib to
SVG), `content` (all of it gathered), `page` (the jinja2 template), `command`.
"""

from datathon_etl.framework.card.command import CARD_NAME, CardError, card_after_run, write_card
from datathon_etl.framework.card.options import CardOptions

__all__ = ["CARD_NAME", "CardError", "CardOptions", "card_after_run", "write_card"]
