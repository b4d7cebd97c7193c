"""The table flags the pipelines share, and what they build.

`TableOutputOptions`, for a command that writes a table:
    ``--output_table`` (alias ``--output_bq_table``, the original MIMIC-CXR
    pipeline's name) and ``--bigquery_write_method``.
`LabelsSourceOptions`, for a command that reads labels:
    ``--labels_query`` or ``--labels_table``, with ``--labels_db`` and
    ``--query_backend``.

A command lists only the classes it uses, so its ``--help`` shows only
flags that mean something to it.

The rule for where a labels query runs: ``--labels_table`` runs where its
spec says (a BigQuery spec in BigQuery, a DuckDB spec in its file, a bare
name in ``--labels_db``); ``--labels_query`` runs in ``--query_backend``
(``duckdb`` by default), against ``--labels_db`` when given. Nothing here
queries anything while flags are parsed.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions

from datathon_etl.framework.tables.bigquery_sink import BigQueryWriteMethod
from datathon_etl.framework.tables.labels_source import LabelsQuery, QueryBackend
from datathon_etl.framework.tables.write import WriteTable

__all__ = [
    "LabelsSourceOptions",
    "TableOutputOptions",
    "labels_query_from_options",
    "query_backend",
    "write_table_from_options",
]


class TableOutputOptions(PipelineOptions):
    """Where a command writes its table."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("output table")
        group.add_argument(
            "--output_table",
            "--output_bq_table",
            dest="output_table",
            default=None,
            help=(
                "The table the command writes (ingest, images-to-tfrecord: the labels; infer: the "
                "predictions; evaluate: the leaderboard); a re-run replaces it. "
                "'project:dataset.table' or 'project.dataset.table': BigQuery; "
                "'path/to/file.duckdb:table': a DuckDB file; a bare 'table': the "
                "pipeline's default DuckDB file (<output_dir>/tables.duckdb). "
                "--output_bq_table is an alias."
            ),
        )
        group.add_argument(
            "--bigquery_write_method",
            default=BigQueryWriteMethod.FILE_LOADS.value,
            choices=[method.value for method in BigQueryWriteMethod],
            help=(
                "How rows reach a BigQuery --output_table. FILE_LOADS (default) "
                "replaces the table; STREAMING_INSERTS appends (BigQuery cannot "
                "truncate under streaming), so use it for a new table."
            ),
        )


class LabelsSourceOptions(PipelineOptions):
    """Where a command reads its labels from."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("labels")
        group.add_argument(
            "--labels_query",
            "--query",
            dest="labels_query",
            default=None,
            help=(
                "SQL that returns a 'path' column plus label columns, run in "
                '--query_backend, e.g. "SELECT path, edema FROM '
                "read_csv('labels.csv.gz')\". Exclusive with --labels_table. "
                "--query (the original pipelines' name) is an alias."
            ),
        )
        group.add_argument(
            "--labels_table",
            default=None,
            help=(
                "A table of labels (with a 'path' column) to read whole: "
                "'project:dataset.table' (BigQuery), 'file.duckdb:table', or a bare "
                "name in --labels_db. Exclusive with --labels_query."
            ),
        )
        group.add_argument(
            "--labels_db",
            default=None,
            help=(
                "A DuckDB database file that --labels_query (DuckDB) or a bare "
                "--labels_table reads, opened read-only. Without it a DuckDB "
                "query runs in memory, over the files it names."
            ),
        )
        group.add_argument(
            "--query_backend",
            default=AUTO_BACKEND,
            choices=[AUTO_BACKEND, *(backend.value for backend in QueryBackend)],
            help=(
                "Where --labels_query runs: duckdb (SQL over CSV, CSV.gz, Parquet or "
                "--labels_db) or bigquery (GoogleSQL, billed to --project). Default "
                "auto: bigquery when the query names a table as `dataset.table` or "
                "`project.dataset.table` in backticks (as the original pipelines' "
                "queries do), else duckdb."
            ),
        )


AUTO_BACKEND = "auto"
_BIGQUERY_TABLE_NAME = re.compile(r"`[^`.\s]+(\.[^`.\s]+){1,2}`")


def query_backend(options: PipelineOptions) -> QueryBackend:
    """Where ``--labels_query`` runs: ``--query_backend``, with ``auto`` resolved."""
    tables = options.view_as(LabelsSourceOptions)
    if tables.query_backend != AUTO_BACKEND:
        return QueryBackend(tables.query_backend)
    if _BIGQUERY_TABLE_NAME.search(tables.labels_query or ""):
        return QueryBackend.BIGQUERY
    return QueryBackend.DUCKDB


def labels_query_from_options(options: PipelineOptions) -> LabelsQuery | None:
    """Builds the labels query the flags describe (see the module docstring).

    Args:
        options: The pipeline's options; ``--project`` runs BigQuery queries.

    Returns:
        The query, or ``None`` when neither ``--labels_query`` nor
        ``--labels_table`` is given.

    Raises:
        ValueError: Both are given, or the flags contradict each other.
    """
    tables = options.view_as(LabelsSourceOptions)
    project = options.view_as(GoogleCloudOptions).project
    if tables.labels_query and tables.labels_table:
        raise ValueError("give --labels_query or --labels_table, not both")
    if tables.labels_table:
        return LabelsQuery.from_table(
            tables.labels_table, default_database=tables.labels_db, project=project
        )
    if not tables.labels_query:
        return None
    backend = query_backend(options)
    if backend is QueryBackend.BIGQUERY:
        if tables.labels_db:
            raise ValueError(
                "--labels_db is for DuckDB; it cannot be used with --query_backend bigquery"
            )
        return LabelsQuery(tables.labels_query, backend, project=project)
    return LabelsQuery(tables.labels_query, backend, database=tables.labels_db)


def write_table_from_options(
    options: PipelineOptions,
    schema: pa.Schema | Mapping[str, Any],
    *,
    default_database: str,
) -> WriteTable | None:
    """Builds the `WriteTable` for ``--output_table``, or ``None`` without one.

    Args:
        options: The pipeline's options.
        schema: The table's columns (see `WriteTable`).
        default_database: The DuckDB file for a bare table name, e.g.
            ``<output_dir>/tables.duckdb``.

    Returns:
        The transform, or ``None`` when ``--output_table`` is not set.
    """
    tables = options.view_as(TableOutputOptions)
    if not tables.output_table:
        return None
    return WriteTable(
        tables.output_table,
        schema,
        default_database=default_database,
        bigquery_method=BigQueryWriteMethod(tables.bigquery_write_method),
    )
