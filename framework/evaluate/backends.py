"""Where the organiser's tables live: the labels read, the leaderboard written (DuckDB or BigQuery).

The labels table is the organiser's own and trusted; it is read whole into
memory (every split: a row of another split's image is told apart from an
unknown one) on its own connection, never together with a team's file. The
scoring itself runs in memory (`score`), the same for both backends. The
leaderboard replaces ``--output_table``: in DuckDB through the DuckDB sink's
single transaction with column comments; in BigQuery with one query,
``CREATE OR REPLACE TABLE ... AS SELECT`` over the rows written as typed
literals (strings base64-encoded, so no text of a team's can end a
literal): a leaderboard is a few rows a team.
"""

from __future__ import annotations

import base64
import os
import tempfile

import pyarrow as pa
import pyarrow.parquet as pq

from datathon_etl.framework.tables import (
    BigQueryTable,
    DuckDBTable,
    TableSpec,
    arrow_to_bigquery_schema,
    query_bigquery,
    replace_duckdb_table,
)

__all__ = ["read_labels", "write_leaderboard"]


def read_labels(table: TableSpec, project: str | None = None) -> pa.Table:
    """Reads the organiser's labels table whole.

    Raises:
        ValueError: The DuckDB file or the table does not exist (DuckDB);
            BigQuery's errors pass through.
    """
    if isinstance(table, BigQueryTable):
        return query_bigquery(f"SELECT * FROM {table.sql_name}", project=project)
    import duckdb

    if not os.path.isfile(table.database):
        raise ValueError(f"{table}: no such DuckDB file")
    with duckdb.connect(table.database, read_only=True) as con:
        try:
            return con.sql(f"SELECT * FROM {table.sql_name}").to_arrow_table()
        except duckdb.Error as e:
            raise ValueError(f"{table}: {' '.join(str(e).split())}") from e


def write_leaderboard(leaderboard: pa.Table, output: TableSpec, project: str | None = None) -> int:
    """Replaces ``output`` with ``leaderboard``; returns the rows written."""
    if isinstance(output, DuckDBTable):
        with tempfile.TemporaryDirectory(prefix="datathon-etl-leaderboard-") as folder:
            staged = os.path.join(folder, "leaderboard.parquet")
            pq.write_table(leaderboard, staged)
            return replace_duckdb_table(output, leaderboard.schema, [staged])
    types = {f["name"]: f["type"] for f in arrow_to_bigquery_schema(leaderboard.schema)["fields"]}
    rows = ",\n  ".join(
        "STRUCT("
        + ", ".join(
            f"{_value(row[name], types[name])} AS {name}" for name in leaderboard.column_names
        )
        + ")"
        for row in leaderboard.to_pylist()
    )
    source = (
        f"SELECT * FROM UNNEST([\n  {rows}\n])"
        if rows
        else (
            "SELECT "
            + ", ".join(f"CAST(NULL AS {t}) AS {n}" for n, t in types.items())
            + " LIMIT 0"
        )
    )
    query_bigquery(
        f"CREATE OR REPLACE TABLE {output.sql_name} AS\n{source}",
        project=project,
    )
    return int(leaderboard.num_rows)


def _string(text: str) -> str:
    # Base64 holds no quote or backslash: a team's text cannot end the literal.
    encoded = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return f"CAST(FROM_BASE64('{encoded}') AS STRING)"


def _value(value: object, type_: str) -> str:
    if value is None:
        return f"CAST(NULL AS {type_})"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"CAST('{value!r}' AS FLOAT64)"
    return _string(str(value))
