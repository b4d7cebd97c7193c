"""Runs a SQL query in DuckDB and returns the result as an Arrow table.

The query may read CSV, gzip-compressed CSV and Parquet files through
DuckDB's table functions (``read_csv('labels.csv.gz')``,
``read_parquet('labels/*.parquet')``), and the tables of a DuckDB database
file opened read-only. Column types are those DuckDB gives the result
(for CSV, its sniffer: a column of integers is ``BIGINT``), never
re-guessed from the values afterwards.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

__all__ = ["query_duckdb"]


def query_duckdb(sql: str, *, database: str | None = None) -> pa.Table:
    """Runs ``sql`` in DuckDB and returns the whole result.

    Args:
        sql: One query that returns rows (other statements return DuckDB's
            status table, which a labels check then refuses).
        database: A DuckDB file whose tables the query reads; opened
            read-only, so it must exist. Without it the query runs in an
            in-memory database (enough for queries over files).

    Returns:
        The result, with DuckDB's result schema.

    Raises:
        duckdb.Error: The query fails or the database cannot be opened.
    """
    connection = (
        duckdb.connect(database, read_only=True) if database else duckdb.connect(":memory:")
    )
    with connection as con:
        return con.sql(sql).to_arrow_table()
