"""Label tables: table specs, `WriteTable` (DuckDB or BigQuery), labels queries.

One file per sink and source: `duckdb_sink`, `bigquery_sink`, `query_duckdb`,
`query_bigquery`; `write` and `labels_source` pick between them; `spec`
parses table names; `bigquery_schema` converts schemas and rows; `options`
holds the shared flags.
"""

from __future__ import annotations

from datathon_etl.framework.tables.bigquery_schema import (
    DESCRIPTION_KEY,
    BigQuerySchema,
    arrow_to_bigquery_schema,
    bigquery_to_arrow_schema,
    encode_bigquery_row,
)
from datathon_etl.framework.tables.bigquery_sink import (
    BigQueryWriteMethod,
    WriteBigQueryTable,
    write_disposition,
)
from datathon_etl.framework.tables.duckdb_sink import WriteDuckDBTable, replace_duckdb_table
from datathon_etl.framework.tables.labels_source import (
    PATH_COLUMN,
    LabelsQuery,
    QueryBackend,
    check_labels_schema,
)
from datathon_etl.framework.tables.options import (
    LabelsSourceOptions,
    TableOutputOptions,
    labels_query_from_options,
    write_table_from_options,
)
from datathon_etl.framework.tables.query_bigquery import query_bigquery
from datathon_etl.framework.tables.query_duckdb import query_duckdb
from datathon_etl.framework.tables.spec import (
    BigQueryTable,
    DuckDBTable,
    TableSpec,
    parse_table_spec,
)
from datathon_etl.framework.tables.write import WriteTable

__all__ = [
    "DESCRIPTION_KEY",
    "PATH_COLUMN",
    "BigQuerySchema",
    "BigQueryTable",
    "BigQueryWriteMethod",
    "DuckDBTable",
    "LabelsQuery",
    "LabelsSourceOptions",
    "QueryBackend",
    "TableOutputOptions",
    "TableSpec",
    "WriteBigQueryTable",
    "WriteDuckDBTable",
    "WriteTable",
    "arrow_to_bigquery_schema",
    "bigquery_to_arrow_schema",
    "check_labels_schema",
    "encode_bigquery_row",
    "labels_query_from_options",
    "parse_table_spec",
    "query_bigquery",
    "query_duckdb",
    "replace_duckdb_table",
    "write_disposition",
    "write_table_from_options",
]
