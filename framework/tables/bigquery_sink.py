"""Writes dict rows into a BigQuery table with Beam's ``WriteToBigQuery``.

Kept thin on purpose: the schema conversion and row encoding are the pure,
tested functions of `bigquery_schema`; the rest is Beam's transform with
fixed dispositions (see `write_disposition`), plus one step for an empty
input: Beam starts no load job and no insert without rows, so the table
would keep its old rows (``FILE_LOADS``) or never be created. When the input
is empty that step applies the same dispositions to the table itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.gcp.bigquery import BigQueryDisposition
from apache_beam.pvalue import PCollection
from apache_beam.transforms import combiners

from datathon_etl.framework.tables._rows import check_columns
from datathon_etl.framework.tables.bigquery_schema import (
    arrow_to_bigquery_schema,
    bigquery_to_arrow_schema,
    bytes_columns,
    encode_bigquery_row,
)
from datathon_etl.framework.tables.spec import BigQueryTable

__all__ = [
    "BigQueryWriteMethod",
    "WriteBigQueryTable",
    "write_disposition",
]


class BigQueryWriteMethod(StrEnum):
    """How rows reach BigQuery (the names are Beam's).

    ``STORAGE_WRITE_API`` is left out: Beam runs it through a Java expansion
    service.
    """

    FILE_LOADS = "FILE_LOADS"
    STREAMING_INSERTS = "STREAMING_INSERTS"


def write_disposition(method: BigQueryWriteMethod) -> str:
    """The write disposition used with ``method``.

    ``FILE_LOADS`` replaces the table (``WRITE_TRUNCATE``). BigQuery cannot
    truncate under streaming inserts (Beam refuses the combination, and rows
    streamed into a just-recreated table can be lost for minutes), so
    ``STREAMING_INSERTS`` appends: use it for a new or dropped table.
    """
    if method is BigQueryWriteMethod.FILE_LOADS:
        return str(BigQueryDisposition.WRITE_TRUNCATE)
    return str(BigQueryDisposition.WRITE_APPEND)


def _encode(row: dict[str, Any], names: list[str], binary: frozenset[str]) -> dict[str, Any]:
    check_columns(row, names)
    return encode_bigquery_row(row, binary)


class _DispositionsIfEmptyFn(beam.DoFn):
    """Given the input's row count: if 0, creates the table, or replaces it with an empty one.

    Uses the google-cloud-bigquery client (as Beam's streaming inserts do);
    not Beam's ``get_or_create_table``, which sleeps 150 s after re-creating
    a table for ``WRITE_TRUNCATE``.
    """

    def __init__(
        self, table: BigQueryTable, schema: Mapping[str, Any], method: BigQueryWriteMethod
    ) -> None:
        self._table = table
        self._fields = [dict(field) for field in schema["fields"]]
        self._method = method

    def process(self, count: int) -> None:
        if count:
            return
        from google.cloud import bigquery

        client = bigquery.Client(project=self._table.project)
        name = f"{self._table.project}.{self._table.dataset}.{self._table.table}"
        if self._method is BigQueryWriteMethod.FILE_LOADS:  # WRITE_TRUNCATE
            client.delete_table(name, not_found_ok=True)
        schema = [bigquery.SchemaField.from_api_repr(field) for field in self._fields]
        client.create_table(bigquery.Table(name, schema=schema), exists_ok=True)


class WriteBigQueryTable(beam.PTransform[PCollection[dict[str, Any]], Any]):
    """Writes dict rows to a BigQuery table, creating it if needed.

    An empty input leaves an empty table (``FILE_LOADS``), or creates the
    table if missing (``STREAMING_INSERTS``), as a non-empty one would. The
    output is Beam's ``WriteResult``.
    """

    def __init__(
        self,
        table: BigQueryTable,
        schema: pa.Schema | Mapping[str, Any],
        *,
        method: BigQueryWriteMethod = BigQueryWriteMethod.FILE_LOADS,
    ) -> None:
        """Configures the write.

        Args:
            table: The table to write.
            schema: The columns: an Arrow schema, or a BigQuery JSON schema
                (``{"fields": [...]}``) used as is, descriptions included.
            method: How rows reach BigQuery.

        Raises:
            ValueError: The schema has a column BigQuery cannot hold here.
        """
        super().__init__()
        if isinstance(schema, pa.Schema):
            self._arrow_schema = schema
            self._bigquery_schema: Mapping[str, Any] = arrow_to_bigquery_schema(schema)
        else:
            self._arrow_schema = bigquery_to_arrow_schema(schema)
            self._bigquery_schema = schema
        self._table = table
        self._method = BigQueryWriteMethod(method)

    def expand(self, rows: PCollection[dict[str, Any]]) -> Any:
        """Encodes the rows for BigQuery's JSON and writes them."""
        _ = (
            rows
            | "CountRows" >> combiners.Count.Globally()
            | "IfEmpty"
            >> beam.ParDo(_DispositionsIfEmptyFn(self._table, self._bigquery_schema, self._method))
        )
        return (
            rows
            | "Encode"
            >> beam.Map(_encode, self._arrow_schema.names, bytes_columns(self._arrow_schema))
            | "Write"
            >> beam.io.WriteToBigQuery(
                table=self._table.beam_spec,
                schema=dict(self._bigquery_schema),
                create_disposition=BigQueryDisposition.CREATE_IF_NEEDED,
                write_disposition=write_disposition(self._method),
                method=str(self._method),
            )
        )
