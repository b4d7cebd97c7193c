"""Label sources: a SQL query that yields a ``path`` column plus label columns.

The backend is explicit (`QueryBackend`, the ``--query_backend`` flag,
DuckDB by default), except for a query built from a table spec, where the
spec says where the table is. The result is small next to the images, so it
is read whole on the driver and handed to the pipeline as a side input or a
``beam.Create``; its Arrow schema carries the label columns' types.
"""

from __future__ import annotations

from enum import StrEnum

import attrs
import pyarrow as pa

from datathon_etl.framework.tables.query_bigquery import query_bigquery
from datathon_etl.framework.tables.query_duckdb import query_duckdb
from datathon_etl.framework.tables.spec import BigQueryTable, TableSpec, parse_table_spec

__all__ = [
    "PATH_COLUMN",
    "LabelsQuery",
    "QueryBackend",
    "check_labels_schema",
]

PATH_COLUMN = "path"
"""The column that joins labels to images."""


class QueryBackend(StrEnum):
    """Where a labels query runs."""

    DUCKDB = "duckdb"
    BIGQUERY = "bigquery"


def check_labels_schema(schema: pa.Schema) -> None:
    """Checks that a labels result has a text ``path`` column and unique column names.

    Raises:
        ValueError: It does not.
    """
    names = schema.names
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"labels query: columns appear more than once: {duplicates}")
    if PATH_COLUMN not in names:
        raise ValueError(
            f"labels query: the result has no {PATH_COLUMN!r} column; columns: {names}"
        )
    path_type = schema.field(PATH_COLUMN).type
    if not (pa.types.is_string(path_type) or pa.types.is_large_string(path_type)):
        raise ValueError(f"labels query: {PATH_COLUMN!r} must be text, not {path_type}")


def _check_database(
    instance: LabelsQuery, attribute: attrs.Attribute[str | None], value: str | None
) -> None:
    if value is not None and instance.backend is QueryBackend.BIGQUERY:
        raise ValueError("labels query: a DuckDB database file was given for a BigQuery query")


@attrs.frozen
class LabelsQuery:
    """A labels query and where it runs.

    Attributes:
        sql: The query: DuckDB SQL (e.g. ``SELECT ... FROM
            read_csv('labels.csv.gz')``) or GoogleSQL.
        backend: Where it runs.
        database: DuckDB only: a database file the query reads, opened
            read-only; ``None`` runs it in memory (for queries over files).
        project: BigQuery only: the project that runs the query; ``None``
            means the client's default.
    """

    sql: str
    backend: QueryBackend = attrs.field(default=QueryBackend.DUCKDB, converter=QueryBackend)
    database: str | None = attrs.field(default=None, validator=_check_database)
    project: str | None = None

    @classmethod
    def from_table(
        cls,
        table: str | TableSpec,
        *,
        default_database: str | None = None,
        project: str | None = None,
    ) -> LabelsQuery:
        """Reads a whole table: ``SELECT * FROM`` it, in the backend its spec names.

        Args:
            table: A table spec (see `parse_table_spec`).
            default_database: The DuckDB file for a bare table name.
            project: For BigQuery: the project that runs the query.

        Returns:
            The query.
        """
        spec = (
            parse_table_spec(table, default_database=default_database)
            if isinstance(table, str)
            else table
        )
        if isinstance(spec, BigQueryTable):
            return cls(f"SELECT * FROM {spec.sql_name}", QueryBackend.BIGQUERY, project=project)
        return cls(f"SELECT * FROM {spec.sql_name}", QueryBackend.DUCKDB, database=spec.database)

    def run(self) -> pa.Table:
        """Runs the query and returns the labels.

        Returns:
            The result; ``.schema`` has the label columns' types (from the
            result schema), ``.to_pylist()`` gives one dict per row.

        Raises:
            ValueError: The result has no text ``path`` column, or repeats a
                column name.
        """
        if self.backend is QueryBackend.BIGQUERY:
            result = query_bigquery(self.sql, project=self.project)
        else:
            result = query_duckdb(self.sql, database=self.database)
        check_labels_schema(result.schema)
        return result
