"""Runs a SQL query in BigQuery and returns the result as an Arrow table.

Uses the google-cloud-bigquery client, not Beam's ``ReadFromBigQuery``: a
label query's result is small next to the images, and a query read in Beam
needs a temporary destination table. Column types are those of the query's
result schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from google.cloud import bigquery

__all__ = ["query_bigquery"]


def query_bigquery(
    sql: str, *, project: str | None = None, client: bigquery.Client | None = None
) -> pa.Table:
    """Runs ``sql`` (GoogleSQL) in BigQuery and returns the whole result.

    Args:
        sql: One query that returns rows.
        project: The project that runs (and pays for) the query; the
            client's default project when ``None``.
        client: A client to use instead of a new one (e.g. pointed at an
            emulator).

    Returns:
        The result, with BigQuery's result schema.
    """
    if client is None:
        # Imported here so DuckDB-only runs never load the BigQuery client.
        from google.cloud import bigquery

        client = bigquery.Client(project=project)
    return client.query(sql, project=project).to_arrow()
