"""Writes dict rows into a table of a DuckDB file, replacing it (write-truncate).

Workers cannot share one DuckDB file, so the write has two phases:

1. Workers batch rows into Arrow tables under the given schema and write them
   with ``WriteToParquetBatched`` into a staging folder next to the database,
   ``<database>.staging/<table>/<run id>/``. The run id is new for every
   pipeline construction, so parquet left by an earlier (failed) run is never
   read.
2. After every shard is written (the written file names are combined into one
   list, which only exists once all shards are final), one finalising step
   replaces the table in a single DuckDB transaction, then deletes the run's
   staging folder. Readers see the old table or the new one, never a mix.

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
import glob
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
import attrs
import duckdb
import pyarrow as pa
from apache_beam.pvalue import PCollection
from apache_beam.transforms import combiners

from datathon_etl.framework.tables._rows import rows_to_table
from datathon_etl.framework.tables.bigquery_schema import DESCRIPTION_KEY
from datathon_etl.framework.tables.spec import DuckDBTable, quote_identifier

__all__ = [
    "WriteDuckDBTable",
    "replace_duckdb_table",
    "staging_root",
]

_SHARD_PREFIX = "part"
_SHARD_GLOB = f"{_SHARD_PREFIX}-*.parquet"
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


class _ReplaceTableFn(beam.DoFn):
    """Receives every written shard name at once; replaces the table from them."""

    def __init__(self, table: DuckDBTable, schema: pa.Schema, staging: str) -> None:
        self._table = table
        self._schema = schema
        self._staging = staging

    def process(self, written: list[str]) -> Iterator[int]:
        # The run folder is new for this run, so everything in it is ours; a
        # glob also catches shards a retried finalize no longer reports.
        found = sorted(glob.glob(os.path.join(glob.escape(self._staging), _SHARD_GLOB)))
        unseen = sorted(set(map(os.path.abspath, written)) - set(map(os.path.abspath, found)))
        if unseen:
            raise RuntimeError(
                f"{self._table}: {len(unseen)} written shard(s) are not visible to the "
                f"finalising step (e.g. {unseen[0]}); the workers and the finalising "
                "step must share a filesystem"
            )
        rows = replace_duckdb_table(self._table, self._schema, found)
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
        min_batch_size: int = 1_000,
        max_batch_size: int = 50_000,
        run_id: str | None = None,
    ) -> None:
        """Configures the write.

        Args:
            table: The table to replace.
            schema: The table's columns, order, types and nullability.
            min_batch_size: Fewest rows per Arrow batch (parquet row group).
            max_batch_size: Most rows per Arrow batch.
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
        self._min_batch_size = min_batch_size
        self._max_batch_size = max_batch_size
        self._run_id = run_id

    def expand(self, rows: PCollection[dict[str, Any]]) -> PCollection[int]:
        """Stages the rows as parquet, then replaces the table from them."""
        # Absolute, so workers with another working directory agree on it.
        table = attrs.evolve(self._table, database=os.path.abspath(self._table.database))
        run_id = self._run_id or uuid.uuid4().hex
        staging = os.path.join(staging_root(table), run_id)
        written = (
            rows
            | "Batch"
            >> beam.BatchElements(
                min_batch_size=self._min_batch_size, max_batch_size=self._max_batch_size
            )
            | "ToArrow" >> beam.Map(rows_to_table, self._schema)
            | "WriteParquet"
            >> beam.io.WriteToParquetBatched(
                os.path.join(staging, _SHARD_PREFIX),
                schema=self._schema,
                file_name_suffix=".parquet",
            )
        )
        return (
            written
            | "AllShards" >> combiners.ToList()
            | "ReplaceTable" >> beam.ParDo(_ReplaceTableFn(table, self._schema, staging))
        )
