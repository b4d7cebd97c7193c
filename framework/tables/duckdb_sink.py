"""Writes dict rows into a table of a DuckDB file, replacing it (write-truncate).

Workers cannot share one DuckDB file, so the write has two phases:

1. Each bundle writes its rows, converted to Arrow under the given schema,
   into one parquet file of its own in a staging folder next to the
   database, ``<database>.staging/<table>/<run id>/part-<uuid>.parquet``, and
   outputs the file's name once the file is complete. The run id is new for
   every pipeline construction, so parquet left by an earlier (failed) run is
   never read.
2. The names are combined into one list, which only exists once every bundle
   has committed: a bundle that failed and was retried left a file whose name
   never reached the list. One finalising step replaces the table from
   exactly the listed files in a single DuckDB transaction, then deletes the
   run's staging folder. Readers see the old table or the new one, never a
   mix.

A bundle writes its own file, not Beam's file sinks: those add a dozen
transforms and side inputs, and every transform costs start-up time.

The table's column types come from DuckDB's own Arrow type mapping of the
given schema (the table is first created from an empty Arrow table with that
schema), then the parquet rows are inserted; so an empty input still yields
an empty table with the right columns, and empty and non-empty runs give the
same table definition. Non-nullable fields become ``NOT NULL`` columns and
field descriptions become column comments.

The database and staging folder are local paths: the workers and the
finalising step must share a filesystem (the DirectRunner, the FnApiRunner,
or ``multi_processing`` workers on one machine).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
import attrs
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.pvalue import PCollection
from apache_beam.transforms import combiners
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from datathon_etl.framework.tables._rows import rows_to_table
from datathon_etl.framework.tables.bigquery_schema import DESCRIPTION_KEY
from datathon_etl.framework.tables.spec import DuckDBTable, quote_identifier

__all__ = [
    "WriteDuckDBTable",
    "replace_duckdb_table",
    "staging_root",
]

_SHARD_PREFIX = "part"
_SCHEMA_VIEW = "__datathon_etl_table_schema"


def staging_root(table: DuckDBTable) -> str:
    """The folder holding the per-run staging folders of ``table``."""
    return os.path.join(f"{table.database}.staging", table.table)


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def replace_duckdb_table(
    table: DuckDBTable, schema: pa.Schema, parquet_files: Sequence[str]
) -> int:
    """Creates or replaces ``table`` with the rows of the parquet files, in one transaction.

    Args:
        table: Where to write; the database file and its folder are created
            if needed.
        schema: The table's columns, order, types and nullability.
        parquet_files: Files written with ``schema``; may be empty.

    Returns:
        The number of rows in the new table.
    """
    folder = os.path.dirname(table.database)
    if folder:
        os.makedirs(folder, exist_ok=True)
    name = table.sql_name
    columns = ", ".join(quote_identifier(field.name) for field in schema)
    with duckdb.connect(table.database) as con:
        con.register(_SCHEMA_VIEW, schema.empty_table())
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {_SCHEMA_VIEW}")
            for field in schema:
                column = quote_identifier(field.name)
                if not field.nullable:
                    con.execute(f"ALTER TABLE {name} ALTER COLUMN {column} SET NOT NULL")
                description = (field.metadata or {}).get(DESCRIPTION_KEY)
                if description is not None:
                    con.execute(
                        f"COMMENT ON COLUMN {name}.{column} IS "
                        f"{_sql_string(description.decode('utf-8'))}"
                    )
            if parquet_files:
                con.execute(
                    f"INSERT INTO {name} ({columns}) SELECT {columns} FROM read_parquet(?)",
                    [list(parquet_files)],
                )
            (rows,) = con.execute(f"SELECT count(*) FROM {name}").fetchone() or (0,)
            con.execute("COMMIT")
        except BaseException:
            # Keep the original error even if the rollback itself fails.
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
        finally:
            con.unregister(_SCHEMA_VIEW)
    return int(rows)


class _WriteBundleFn(beam.DoFn):
    """Writes a bundle's rows into one parquet file; outputs its name when complete."""

    def __init__(self, schema: pa.Schema, staging: str, row_group_size: int) -> None:
        self._schema = schema
        self._staging = staging
        self._row_group_size = row_group_size

    def setup(self) -> None:
        self._writer: pq.ParquetWriter | None = None

    def start_bundle(self) -> None:
        self._close()  # a failed bundle's file: its name was never output
        self._rows: list[dict[str, Any]] = []
        self._path = ""

    def process(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        if len(self._rows) >= self._row_group_size:
            self._write_rows()

    def finish_bundle(self) -> Iterator[WindowedValue]:
        if self._rows:
            self._write_rows()
        if self._writer is not None:
            self._close()
            yield WindowedValue(self._path, GlobalWindow().max_timestamp(), [GlobalWindow()])

    def _write_rows(self) -> None:
        table = rows_to_table(self._rows, self._schema)
        self._rows = []
        if self._writer is None:
            os.makedirs(self._staging, exist_ok=True)
            self._path = os.path.join(self._staging, f"{_SHARD_PREFIX}-{uuid.uuid4().hex}.parquet")
            self._writer = pq.ParquetWriter(self._path, self._schema)
        self._writer.write_table(table)

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def teardown(self) -> None:
        self._close()


class _ReplaceTableFn(beam.DoFn):
    """Receives every committed file name at once; replaces the table from them."""

    def __init__(self, table: DuckDBTable, schema: pa.Schema, staging: str) -> None:
        self._table = table
        self._schema = schema
        self._staging = staging

    def process(self, written: list[str]) -> Iterator[int]:
        # Exactly the listed files: the folder may also hold the file of a
        # bundle that failed and was retried.
        files = sorted(written)
        unseen = [path for path in files if not os.path.exists(path)]
        if unseen:
            raise RuntimeError(
                f"{self._table}: {len(unseen)} written file(s) are not visible to the "
                f"finalising step (e.g. {unseen[0]}); the workers and the finalising "
                "step must share a filesystem"
            )
        rows = replace_duckdb_table(self._table, self._schema, files)
        shutil.rmtree(self._staging, ignore_errors=True)
        # Tidy the per-table and per-database staging folders once empty.
        for folder in (
            os.path.dirname(self._staging),
            os.path.dirname(os.path.dirname(self._staging)),
        ):
            with contextlib.suppress(OSError):
                os.rmdir(folder)
        yield rows


class WriteDuckDBTable(beam.PTransform[PCollection[dict[str, Any]], PCollection[int]]):
    """Replaces a DuckDB table with the input rows (see the module docstring).

    The output is a single element: the number of rows in the new table.
    """

    def __init__(
        self,
        table: DuckDBTable,
        schema: pa.Schema,
        *,
        row_group_size: int = 50_000,
        run_id: str | None = None,
    ) -> None:
        """Configures the write.

        Args:
            table: The table to replace.
            schema: The table's columns, order, types and nullability.
            row_group_size: Most rows a bundle holds before writing them (a
                parquet row group).
            run_id: Names this run's staging folder; a fresh one by default.
                A test hook.

        Raises:
            ValueError: The database is not a local path.
        """
        super().__init__()
        if "://" in table.database:
            raise ValueError(f"{table}: DuckDB tables must live in a local file")
        self._table = table
        self._schema = schema
        self._row_group_size = row_group_size
        self._run_id = run_id

    def expand(self, rows: PCollection[dict[str, Any]]) -> PCollection[int]:
        """Stages the rows as parquet files, then replaces the table from them."""
        # Absolute, so workers with another working directory agree on it.
        table = attrs.evolve(self._table, database=os.path.abspath(self._table.database))
        run_id = self._run_id or uuid.uuid4().hex
        staging = os.path.join(staging_root(table), run_id)
        written = rows | "WriteParquet" >> beam.ParDo(
            _WriteBundleFn(self._schema, staging, self._row_group_size)
        )
        return (
            written
            | "AllShards" >> combiners.ToList()
            | "ReplaceTable" >> beam.ParDo(_ReplaceTableFn(table, self._schema, staging))
        )
