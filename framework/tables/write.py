"""`WriteTable`: replace a table with a PCollection of dict rows, in DuckDB or BigQuery.

The table spec picks the backend (see `spec`); the schema is always given,
never inferred from the rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.pvalue import PCollection

from datathon_etl.framework.tables.bigquery_schema import bigquery_to_arrow_schema
from datathon_etl.framework.tables.bigquery_sink import BigQueryWriteMethod, WriteBigQueryTable
from datathon_etl.framework.tables.duckdb_sink import WriteDuckDBTable
from datathon_etl.framework.tables.spec import BigQueryTable, TableSpec, parse_table_spec

__all__ = ["WriteTable", "table_sink"]


def table_sink(
    table: str | TableSpec,
    schema: pa.Schema | Mapping[str, Any],
    *,
    default_database: str | None = None,
    bigquery_method: BigQueryWriteMethod = BigQueryWriteMethod.FILE_LOADS,
) -> WriteDuckDBTable | WriteBigQueryTable:
    """Chooses and configures the sink for a table spec (see `WriteTable`)."""
    spec = (
        parse_table_spec(table, default_database=default_database)
        if isinstance(table, str)
        else table
    )
    if isinstance(spec, BigQueryTable):
        return WriteBigQueryTable(spec, schema, method=bigquery_method)
    arrow_schema = schema if isinstance(schema, pa.Schema) else bigquery_to_arrow_schema(schema)
    return WriteDuckDBTable(spec, arrow_schema)


class WriteTable(beam.PTransform[PCollection[dict[str, Any]], Any]):
    """Replaces a table with the input rows (write-truncate: a re-run replaces it).

    Each input element is one row as a dict with exactly the schema's columns.
    The output is the backend's: for DuckDB a single element, the number of
    rows written; for BigQuery Beam's ``WriteResult``.

    Example:
        ``rows | WriteTable("out/tables.duckdb:labels", schema)``
    """

    def __init__(
        self,
        table: str | TableSpec,
        schema: pa.Schema | Mapping[str, Any],
        *,
        default_database: str | None = None,
        bigquery_method: BigQueryWriteMethod = BigQueryWriteMethod.FILE_LOADS,
    ) -> None:
        """Configures the write; a bad spec or schema fails here, not on a worker.

        Args:
            table: A table spec string (see `parse_table_spec`) or a parsed spec.
            schema: The columns, their order and types: an Arrow schema, or a
                BigQuery JSON schema (``{"fields": [...]}``, e.g. a generated
                schema file), which BigQuery uses as is, descriptions included.
            default_database: The DuckDB file for a bare table name, e.g.
                ``<output_dir>/tables.duckdb``.
            bigquery_method: How rows reach BigQuery; see `write_disposition`
                for what ``STREAMING_INSERTS`` means for write-truncate.

        Raises:
            ValueError: The spec or the schema is invalid.
        """
        super().__init__()
        self._sink = table_sink(
            table, schema, default_database=default_database, bigquery_method=bigquery_method
        )

    def expand(self, rows: PCollection[dict[str, Any]]) -> Any:
        """Applies the chosen backend's sink."""
        return rows | self._sink
