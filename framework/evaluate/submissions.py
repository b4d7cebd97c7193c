"""Team submissions, read as plain rows and never as code.

A submission is a predictions table handed in by a team: a Parquet file, a
CSV file, one base table of a DuckDB file, or a BigQuery base table. Its
rows are read into memory with nothing of the team's able to run:

* Parquet and CSV are read with pyarrow (CSV cells parsed as the
  predictions schema's types);
* a DuckDB file is opened read-only on its own connection with external
  access (files, network, ``ATTACH``) and extension loading off and the
  configuration locked, and only a base table without generated columns is
  read: a view, a macro or anything else under the table's name is refused;
* a BigQuery table must be of type ``TABLE`` (not a view, materialized
  view, snapshot or external table) before its rows are selected.

The rows must then have the generated predictions schema's columns: the
ids with their types, and a number for every score (an integer or a float;
a string or any other type is refused, never compared as text). Extra
columns are refused too. Every refusal is a `SubmissionError` naming the
submission and what is wrong.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import attrs
import pyarrow as pa
import pyarrow.compute as pc

from datathon_etl.framework.tables import BigQueryTable, DuckDBTable, parse_table_spec

__all__ = [
    "SUBMISSION_SUFFIXES",
    "Submission",
    "SubmissionError",
    "conform_predictions",
    "find_submissions",
    "read_submission",
]

SUBMISSION_SUFFIXES = (".parquet", ".csv", ".duckdb")
"""The files a folder of submissions is searched for."""

_TEAM_RE = re.compile(r"^[A-Za-z0-9_.-]+$")

_LOCKED_DUCKDB = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "allow_community_extensions": False,
    "lock_configuration": True,
}
"""A team's DuckDB file is opened with these: it can reach nothing but itself."""


class SubmissionError(ValueError):
    """A submission that cannot be scored: unreadable, not plain rows, or the wrong columns."""


@attrs.frozen
class Submission:
    """One team's predictions.

    Attributes:
        team: The team's name (given as ``team=...``, else the file's stem
            or the table's name).
        location: A local Parquet or CSV file, or the table (DuckDB or BigQuery).
    """

    team: str
    location: str | DuckDBTable | BigQueryTable

    def __str__(self) -> str:
        return str(self.location)


def _one(text: str, dataset: str) -> list[Submission]:
    team, sep, where = text.partition("=")
    if not sep or not _TEAM_RE.match(team):
        team, where = "", text
    if os.path.isdir(where):
        if team:
            raise SubmissionError(f"{text}: a folder holds several teams; name files, not folders")
        found = sorted(
            os.path.join(where, name)
            for name in os.listdir(where)
            if name.endswith(SUBMISSION_SUFFIXES) and not name.startswith(".")
        )
        if not found:
            raise SubmissionError(
                f"{where}: no {', '.join(SUBMISSION_SUFFIXES)} file in the folder"
            )
        return [s for path in found for s in _one(path, dataset)]
    if where.endswith((".parquet", ".csv")):
        if not os.path.isfile(where):
            raise SubmissionError(f"{where}: no such file")
        return [Submission(team or _stem(where), where)]
    if where.endswith(".duckdb"):
        where = f"{where}:{dataset}_predictions"
    try:
        table = parse_table_spec(where)
    except ValueError as e:
        raise SubmissionError(f"{text}: {e}") from e
    if isinstance(table, DuckDBTable):
        if not os.path.isfile(table.database):
            raise SubmissionError(f"{table}: no such DuckDB file")
        name = _stem(table.database)
        if table.table != f"{dataset}_predictions":
            name = f"{name}.{table.table}"
        return [Submission(team or name, table)]
    return [Submission(team or table.table, table)]


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def find_submissions(texts: Sequence[str], dataset: str) -> list[Submission]:
    """Parses the submission arguments into submissions, one per team.

    Each text is ``[team=]where``: a folder (every Parquet, CSV and DuckDB
    file in it, one team each, named by the file's stem), a ``.parquet`` or
    ``.csv`` file, ``file.duckdb`` (its ``<dataset>_predictions`` table) or
    ``file.duckdb:table``, or a BigQuery table (``project:dataset.table``).

    Raises:
        SubmissionError: A text names nothing, or two submissions share a team name.
    """
    submissions = [s for text in texts for s in _one(text, dataset)]
    teams = [s.team for s in submissions]
    repeated = sorted({t for t in teams if teams.count(t) > 1})
    if repeated:
        raise SubmissionError(
            f"team names used twice: {', '.join(repeated)}; name them with team=location"
        )
    return submissions


def _read_duckdb(table: DuckDBTable) -> pa.Table:
    import duckdb

    try:
        con = duckdb.connect(table.database, read_only=True, config=dict(_LOCKED_DUCKDB))
    except duckdb.Error as e:
        raise SubmissionError(f"{table}: cannot open the DuckDB file: {e}") from e
    with con:
        kinds = con.execute(
            "SELECT table_type FROM information_schema.tables "
            "WHERE table_schema = 'main' AND table_name = ?",
            [table.table],
        ).fetchall()
        if kinds != [("BASE TABLE",)]:
            found = kinds[0][0].lower() if kinds else "nothing"
            raise SubmissionError(
                f"{table}: {found} by that name; only a base table (plain rows) is read"
            )
        generated = con.execute(
            "SELECT column_name FROM duckdb_columns() "
            "WHERE schema_name = 'main' AND table_name = ? AND is_generated",
            [table.table],
        ).fetchall()
        if generated:
            raise SubmissionError(
                f"{table}: generated column {generated[0][0]!r}; only stored values are read"
            )
        try:
            return con.sql(f"SELECT * FROM main.{table.sql_name}").to_arrow_table()
        except duckdb.Error as e:
            raise SubmissionError(f"{table}: cannot read the table: {e}") from e


def _read_bigquery(table: BigQueryTable, project: str | None) -> pa.Table:
    from google.api_core import exceptions
    from google.cloud import bigquery

    client = bigquery.Client(project=project)
    try:
        kind = client.get_table(f"{table.project}.{table.dataset}.{table.table}").table_type
    except exceptions.NotFound as e:
        raise SubmissionError(f"{table}: no such BigQuery table") from e
    if kind != "TABLE":
        raise SubmissionError(f"{table}: a {kind}; only a base table (plain rows) is read")
    return client.query(f"SELECT * FROM {table.sql_name}", project=project).to_arrow()


def read_submission(
    submission: Submission, schema: pa.Schema, project: str | None = None
) -> pa.Table:
    """Reads a submission's rows as plain data and conforms them to ``schema``.

    Args:
        submission: Where the rows are.
        schema: The generated predictions schema.
        project: BigQuery: the project that runs the read.

    Raises:
        SubmissionError: The rows cannot be read as plain data, or their
            columns are not the predictions schema's (see the module docstring).
    """
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    where = submission.location
    try:
        if isinstance(where, DuckDBTable):
            table = _read_duckdb(where)
        elif isinstance(where, BigQueryTable):
            table = _read_bigquery(where, project)
        elif where.endswith(".parquet"):
            table = pq.read_table(where)
        else:
            # Cells parsed as the schema's types: a score that is not a number is an error.
            types = {f.name: f.type for f in schema}
            table = pacsv.read_csv(where, convert_options=pacsv.ConvertOptions(column_types=types))
    except SubmissionError:
        raise
    except (OSError, pa.ArrowException) as e:
        raise SubmissionError(f"{where}: cannot read: {' '.join(str(e).split())}") from e
    return conform_predictions(table, schema, str(where))


def _numeric(type_: pa.DataType) -> bool:
    return bool(pa.types.is_integer(type_) or pa.types.is_floating(type_))


def conform_predictions(table: pa.Table, schema: pa.Schema, what: str) -> pa.Table:
    """Checks a submission's columns against the predictions schema; casts to it.

    Raises:
        SubmissionError: A column is missing, extra, or of the wrong type
            (a score that is not a number, an id that does not cast).
    """
    names = set(table.column_names)
    missing = [f.name for f in schema if f.name not in names]
    extra = [n for n in table.column_names if schema.get_field_index(n) < 0]
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unexpected {', '.join(extra)}"] if extra else []
        )
        raise SubmissionError(f"{what}: not the predictions schema's columns: {'; '.join(parts)}")
    columns: list[Any] = []
    for field in schema:
        column = table.column(field.name)
        if pa.types.is_floating(field.type) and not _numeric(column.type):
            raise SubmissionError(
                f"{what}: score column {field.name!r} is {column.type}; scores must be "
                f"numbers ({field.type}), not text"
            )
        try:
            columns.append(pc.cast(column, field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise SubmissionError(
                f"{what}: column {field.name!r} is {column.type}, not {field.type}: {e}"
            ) from e
    return pa.Table.from_arrays(columns, schema=schema.remove_metadata())
