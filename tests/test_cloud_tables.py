"""`WriteTable` and label queries against a real local BigQuery emulator.

Each BigQuery result is compared with what the DuckDB backend gives for the
same input: the same rows, column names, types, modes and descriptions. The
pipelines run in-process (``FnApiRunner``): Beam's BigQuery URL patch exists
only in the test process (see ``tests/emulators``).

Where bqemulator 1.4.0 differs from BigQuery, the tests say so rather than
assert the emulator's behaviour: BYTES in JSON loads (see
`_decode_loaded_bytes`), and ``WRITE_TRUNCATE`` loads, which empty the table
but keep its old schema (BigQuery takes the load's schema), so a re-run with
other columns is not tested here.
"""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

import apache_beam as beam
import duckdb
import pyarrow as pa
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from google.cloud import bigquery as bq

from datathon_etl.framework.tables import (
    DESCRIPTION_KEY,
    BigQueryTable,
    BigQueryWriteMethod,
    LabelsQuery,
    QueryBackend,
    WriteTable,
    arrow_to_bigquery_schema,
    labels_query_from_options,
    query_bigquery,
)
from tests.emulators import BigQueryHandle, GcsHandle

pytestmark = pytest.mark.emulators


def _field(name: str, type_: pa.DataType, text: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={DESCRIPTION_KEY: text.encode()})


# Every column type the BigQuery schema conversion supports.
SCHEMA = pa.schema(
    [
        _field("path", pa.string(), "The image's relative path.", nullable=False),
        _field("patient", pa.int64(), "Patient id.", nullable=False),
        _field("score", pa.float64(), "A model's score."),
        _field("note", pa.string(), "Free text."),
        _field("image", pa.binary(), "Encoded image bytes."),
        _field("frontal", pa.bool_(), "Frontal view."),
        _field("study_date", pa.date32(), "Study date."),
        _field("acquired", pa.timestamp("us", tz="UTC"), "Acquisition instant."),
        _field("scheduled", pa.timestamp("us"), "Wall-clock schedule time."),
    ]
)


def _row(index: int, **changes: Any) -> dict[str, Any]:
    row = {
        "path": f"files/p{index}/s{index}.jpg",
        "patient": 10_000_000 + index,
        "score": index / 4,
        "note": f"note {index} é ✓",
        "image": bytes([index % 256, 0, 255, 0x80]),
        "frontal": index % 2 == 0,
        "study_date": dt.date(2020, 1, 1) + dt.timedelta(days=index),
        "acquired": dt.datetime(2020, 1, 1, 12, 30, 15, 123_456, tzinfo=dt.UTC)
        + dt.timedelta(hours=index),
        "scheduled": dt.datetime(2021, 6, 1, 8, 0, 0, 500) + dt.timedelta(minutes=index),
    }
    row.update(changes)
    return row


ROWS = [
    _row(0),
    _row(1, score=None, note=None, image=None, frontal=None),
    _row(2, study_date=None, acquired=None, scheduled=None),
    *(_row(i) for i in range(3, 12)),
]


def _run(rows: list[dict[str, Any]], transform: WriteTable, *argv: str) -> None:
    options = PipelineOptions(["--runner=FnApiRunner", *argv])
    with beam.Pipeline(options=options) as p:
        _ = p | beam.Create(rows) | transform


def _write_bigquery(
    rows: list[dict[str, Any]],
    table: BigQueryTable,
    method: BigQueryWriteMethod,
    temp_location: str,
) -> None:
    _run(
        rows,
        WriteTable(table, SCHEMA, bigquery_method=method),
        f"--project={table.project}",
        f"--temp_location={temp_location}",
    )


def _write_duckdb(rows: list[dict[str, Any]], database: Path) -> None:
    _run(rows, WriteTable(f"{database}:labels", SCHEMA))


def _read_bigquery(
    client: bq.Client, table: BigQueryTable, method: BigQueryWriteMethod | None = None
) -> pa.Table:
    """The table's rows by path; ``method`` says how they were written (see below)."""
    rows = client.list_rows(f"{table.project}.{table.dataset}.{table.table}")
    result = rows.to_arrow().sort_by("path")
    if method is BigQueryWriteMethod.FILE_LOADS:
        result = _decode_loaded_bytes(result)
    return result


def _decode_loaded_bytes(table: pa.Table) -> pa.Table:
    """Undoes an emulator deviation: base64 text in a JSON load is stored as is.

    BigQuery decodes BYTES values in JSON loads from base64 (as it does for
    streaming inserts, where the emulator decodes them too); bqemulator 1.4.0
    loads JSON with DuckDB's ``COPY ... (FORMAT JSON)``, which keeps the
    base64 text as the bytes. Decoding here checks that what went over the
    wire was the base64 of the original bytes, which is what BigQuery needs.
    """
    for index, field in enumerate(table.schema):
        if pa.types.is_binary(field.type):
            values = [
                None if value is None else base64.b64decode(value, validate=True)
                for value in table.column(index).to_pylist()
            ]
            table = table.set_column(index, field, pa.array(values, type=field.type))
    return table


def _read_duckdb(database: Path) -> pa.Table:
    with duckdb.connect(str(database), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.sql("SELECT * FROM labels ORDER BY path").to_arrow_table()


# BigQuery reports column types by either name (real BigQuery: the legacy one).
_STANDARD_TYPE = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL"}


def _bigquery_columns(client: bq.Client, table: BigQueryTable) -> list[tuple[str, str, bool, str]]:
    """(name, type, nullable, description) of each column, from the table's schema."""
    schema = client.get_table(f"{table.project}.{table.dataset}.{table.table}").schema
    return [
        (
            field.name,
            _STANDARD_TYPE.get(field.field_type, field.field_type),
            field.mode == "NULLABLE",
            field.description or "",
        )
        for field in schema
    ]


def _duckdb_columns(database: Path) -> list[tuple[str, str, bool, str]]:
    """(name, BigQuery type, nullable, comment) of each column, types via the Arrow schema."""
    with duckdb.connect(str(database), read_only=True) as con:
        columns = con.execute(
            "SELECT column_name, is_nullable, comment FROM duckdb_columns() "
            "WHERE table_name = 'labels' ORDER BY column_index"
        ).fetchall()
        arrow = con.sql("SELECT * FROM labels LIMIT 0").to_arrow_table().schema
    types = {field["name"]: field["type"] for field in arrow_to_bigquery_schema(arrow)["fields"]}
    return [(name, types[name], nullable, comment or "") for name, nullable, comment in columns]


def _assert_same_table(bigquery_table: pa.Table, duckdb_table: pa.Table) -> None:
    assert bigquery_table.schema.names == duckdb_table.schema.names
    assert bigquery_table.schema.types == duckdb_table.schema.types
    for index, (bigquery_row, duckdb_row) in enumerate(
        zip(bigquery_table.to_pylist(), duckdb_table.to_pylist(), strict=True)
    ):
        assert bigquery_row == duckdb_row, f"row {index}"


@pytest.mark.parametrize(
    "method", [BigQueryWriteMethod.FILE_LOADS, BigQueryWriteMethod.STREAMING_INSERTS]
)
def test_write_bigquery_matches_duckdb(
    bigquery: BigQueryHandle, gcs: GcsHandle, tmp_path: Path, method: BigQueryWriteMethod
) -> None:
    """Both write methods give the same rows, names, types, modes and descriptions as DuckDB."""
    table = BigQueryTable(bigquery.project, bigquery.dataset(), "labels")
    _write_bigquery(ROWS, table, method, f"{gcs.bucket()}/tmp")
    database = tmp_path / "tables.duckdb"
    _write_duckdb(ROWS, database)
    assert _bigquery_columns(bigquery.client, table) == _duckdb_columns(database)
    _assert_same_table(_read_bigquery(bigquery.client, table, method), _read_duckdb(database))


def test_write_bigquery_file_loads_rerun_replaces(
    bigquery: BigQueryHandle, gcs: GcsHandle, tmp_path: Path
) -> None:
    """A second FILE_LOADS run replaces the rows (write-truncate), like DuckDB."""
    table = BigQueryTable(bigquery.project, bigquery.dataset(), "labels")
    temp = f"{gcs.bucket()}/tmp"
    database = tmp_path / "tables.duckdb"
    first, second = ROWS[:6], [_row(20), _row(3, note="changed")]
    for rows in (first, second):
        _write_bigquery(rows, table, BigQueryWriteMethod.FILE_LOADS, temp)
        _write_duckdb(rows, database)
    result = _read_bigquery(bigquery.client, table, BigQueryWriteMethod.FILE_LOADS)
    assert result.num_rows == len(second)
    _assert_same_table(result, _read_duckdb(database))


@pytest.mark.parametrize(
    "method", [BigQueryWriteMethod.FILE_LOADS, BigQueryWriteMethod.STREAMING_INSERTS]
)
def test_write_bigquery_empty_input_creates_table(
    bigquery: BigQueryHandle, gcs: GcsHandle, tmp_path: Path, method: BigQueryWriteMethod
) -> None:
    """No rows still gives the table, empty, with the DuckDB table's columns."""
    table = BigQueryTable(bigquery.project, bigquery.dataset(), "labels")
    _write_bigquery([], table, method, f"{gcs.bucket()}/tmp")
    database = tmp_path / "tables.duckdb"
    _write_duckdb([], database)
    assert _bigquery_columns(bigquery.client, table) == _duckdb_columns(database)
    _assert_same_table(_read_bigquery(bigquery.client, table, method), _read_duckdb(database))


def test_write_bigquery_file_loads_empty_rerun_empties(
    bigquery: BigQueryHandle, gcs: GcsHandle
) -> None:
    """A FILE_LOADS run with no rows replaces the old rows, as DuckDB's does."""
    table = BigQueryTable(bigquery.project, bigquery.dataset(), "labels")
    temp = f"{gcs.bucket()}/tmp"
    _write_bigquery(ROWS[:3], table, BigQueryWriteMethod.FILE_LOADS, temp)
    _write_bigquery([], table, BigQueryWriteMethod.FILE_LOADS, temp)
    assert _read_bigquery(bigquery.client, table).num_rows == 0
    assert [column[0] for column in _bigquery_columns(bigquery.client, table)] == SCHEMA.names


# --- Label queries -----------------------------------------------------------

LABEL_COLUMNS = [
    ("path", "STRING", "VARCHAR"),
    ("patient", "INT64", "BIGINT"),
    ("view", "STRING", "VARCHAR"),
    ("edema", "FLOAT64", "DOUBLE"),
    ("frontal", "BOOL", "BOOLEAN"),
    ("study_date", "DATE", "DATE"),
]
LABEL_ROWS = [
    {
        "path": "files/p1/s1/a.jpg",
        "patient": 1,
        "view": "PA",
        "edema": 1.0,
        "frontal": True,
        "study_date": dt.date(2019, 5, 1),
    },
    {
        "path": "files/p2/s2/b.jpg",
        "patient": 2,
        "view": "LATERAL",
        "edema": None,
        "frontal": False,
        "study_date": None,
    },
    {
        "path": "files/p3/s3/c.jpg",
        "patient": 3,
        "view": None,
        "edema": -1.0,
        "frontal": None,
        "study_date": dt.date(2020, 2, 29),
    },
]


def _labels_in_bigquery(bigquery: BigQueryHandle) -> BigQueryTable:
    table = BigQueryTable(bigquery.project, bigquery.dataset(), "labels")
    name = f"{table.project}.{table.dataset}.{table.table}"
    schema = [bq.SchemaField(column, type_) for column, type_, _ in LABEL_COLUMNS]
    bigquery.client.create_table(bq.Table(name, schema=schema))
    json_rows = [
        {
            key: value.isoformat() if isinstance(value, dt.date) else value
            for key, value in row.items()
        }
        for row in LABEL_ROWS
    ]
    assert bigquery.client.insert_rows_json(name, json_rows) == []
    return table


def _labels_in_duckdb(database: Path) -> str:
    columns = ", ".join(f"{column} {type_}" for column, _, type_ in LABEL_COLUMNS)
    with duckdb.connect(str(database)) as con:
        con.execute(f"CREATE TABLE labels ({columns})")
        con.executemany(
            f"INSERT INTO labels VALUES ({', '.join('?' * len(LABEL_COLUMNS))})",
            [list(row.values()) for row in LABEL_ROWS],
        )
    return str(database)


def _assert_same_result(bigquery_result: pa.Table, duckdb_result: pa.Table) -> None:
    """Same column names, types and values; row order is the query's business, so by path."""
    assert bigquery_result.schema.names == duckdb_result.schema.names
    assert bigquery_result.schema.types == duckdb_result.schema.types
    if bigquery_result.num_rows:
        bigquery_result = bigquery_result.sort_by("path")
        duckdb_result = duckdb_result.sort_by("path")
    assert bigquery_result.to_pylist() == duckdb_result.to_pylist()


# (BigQuery SQL, DuckDB SQL); {table} is each backend's table name.
LABEL_QUERIES = {
    "projection": (
        "SELECT path, edema, frontal FROM {table} WHERE patient > 1",
        "SELECT path, edema, frontal FROM {table} WHERE patient > 1",
    ),
    "expressions": (
        "SELECT path, CAST(edema AS INT64) AS edema_code, view = 'PA' AS pa, "
        "EXTRACT(YEAR FROM study_date) AS year FROM {table}",
        "SELECT path, CAST(edema AS BIGINT) AS edema_code, view = 'PA' AS pa, "
        "CAST(EXTRACT(YEAR FROM study_date) AS BIGINT) AS year FROM {table}",
    ),
    "empty": ("SELECT * FROM {table} WHERE FALSE", "SELECT * FROM {table} WHERE FALSE"),
}


def test_labels_table_bigquery_matches_duckdb(bigquery: BigQueryHandle, tmp_path: Path) -> None:
    """A whole labels table read from BigQuery equals the same table read from DuckDB."""
    table = _labels_in_bigquery(bigquery)
    database = _labels_in_duckdb(tmp_path / "labels.duckdb")
    bigquery_query = LabelsQuery.from_table(str(table), project=bigquery.project)
    assert bigquery_query.backend is QueryBackend.BIGQUERY
    duckdb_result = LabelsQuery.from_table(f"{database}:labels").run()
    _assert_same_result(bigquery_query.run(), duckdb_result)
    assert duckdb_result.to_pylist() == LABEL_ROWS


@pytest.mark.parametrize("name", sorted(LABEL_QUERIES))
def test_labels_query_bigquery_matches_duckdb(
    bigquery: BigQueryHandle, tmp_path: Path, name: str
) -> None:
    """The same query in each backend gives the same Arrow table (names, types, values)."""
    table = _labels_in_bigquery(bigquery)
    database = _labels_in_duckdb(tmp_path / "labels.duckdb")
    bigquery_sql, duckdb_sql = LABEL_QUERIES[name]
    bigquery_sql = bigquery_sql.format(table=table.sql_name)
    argv = ["--labels_query", bigquery_sql, "--query_backend", "bigquery"]
    query = labels_query_from_options(PipelineOptions([*argv, "--project", bigquery.project]))
    assert query is not None
    bigquery_result = query.run()
    duckdb_result = LabelsQuery(duckdb_sql.format(table="labels"), database=database).run()
    _assert_same_result(bigquery_result, duckdb_result)
    # The client can also be given (e.g. one made elsewhere); same result.
    _assert_same_result(query_bigquery(bigquery_sql, client=bigquery.client), bigquery_result)
