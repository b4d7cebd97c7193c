"""A table the cards query (labels, leaderboard): DuckDB locally, BigQuery for a Dataflow run.

`open_table` yields a `QueryTable`: the table's quoted name and a function
that runs one SQL query and returns its rows. The card's queries are written
in the SQL both engines share (see `datathon_etl.framework.card.stats`), so
the same text runs on either.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from datathon_etl.framework.tables import BigQueryTable, DuckDBTable, TableSpec, query_bigquery

__all__ = ["Query", "QueryTable", "open_table"]

Query = Callable[[str], list[dict[str, Any]]]
"""Runs one SQL query; returns its rows as dicts."""


@attrs.frozen
class QueryTable:
    """A table to query.

    Attributes:
        name: The table's name, quoted for its engine (in FROM clauses).
        query: Runs a query that may name it.
    """

    name: str
    query: Query


@contextlib.contextmanager
def open_table(table: TableSpec) -> Iterator[QueryTable]:
    """Opens ``table`` for queries (a DuckDB file read-only, on its own connection).

    The tables are the organiser's own (labels, leaderboard), trusted as `evaluate` trusts them.

    Raises:
        ValueError: The DuckDB file does not exist. BigQuery's and DuckDB's
            own errors (no such table) pass through.
    """
    if isinstance(table, BigQueryTable):

        def bigquery(sql: str) -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = query_bigquery(sql, project=table.project).to_pylist()
            return rows

        yield QueryTable(table.sql_name, bigquery)
        return
    yield from _duckdb(table)


def _duckdb(table: DuckDBTable) -> Iterator[QueryTable]:
    import duckdb

    if not os.path.isfile(table.database):
        raise ValueError(f"{table}: no such DuckDB file")
    with duckdb.connect(table.database, read_only=True) as con:

        def run(sql: str) -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = con.sql(sql).to_arrow_table().to_pylist()
            return rows

        yield QueryTable(table.sql_name, run)
