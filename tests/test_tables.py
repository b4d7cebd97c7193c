"""Tests for `datathon_etl.framework.tables`: specs, schemas, WriteTable, label queries."""

from __future__ import annotations

import argparse
import csv
import gzip
import os
from pathlib import Path
from typing import Any

import apache_beam as beam
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from datathon_etl.framework.tables import (
    DESCRIPTION_KEY,
    BigQueryTable,
    BigQueryWriteMethod,
    DuckDBTable,
    LabelsQuery,
    LabelsSourceOptions,
    QueryBackend,
    TableOutputOptions,
    WriteBigQueryTable,
    WriteDuckDBTable,
    WriteTable,
    arrow_to_bigquery_schema,
    bigquery_to_arrow_schema,
    check_labels_schema,
    encode_bigquery_row,
    labels_query_from_options,
    parse_table_spec,
    query_duckdb,
    write_disposition,
    write_table_from_options,
)
from datathon_etl.framework.tables._rows import rows_to_table
from datathon_etl.framework.tables.duckdb_sink import staging_root
from datathon_etl.framework.tables.options import query_backend
from datathon_etl.framework.tables.write import table_sink

# --- Table specs -------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("my-project:labels.mimic_cxr", BigQueryTable("my-project", "labels", "mimic_cxr")),
        ("my-project.labels.mimic_cxr", BigQueryTable("my-project", "labels", "mimic_cxr")),
        ("example.com:my-project:ds.t", BigQueryTable("example.com:my-project", "ds", "t")),
        ("my-project:ds.t-2024$20240101", BigQueryTable("my-project", "ds", "t-2024$20240101")),
        ("  my-project:ds.t  ", BigQueryTable("my-project", "ds", "t")),
        ("out/tables.duckdb:labels", DuckDBTable("out/tables.duckdb", "labels")),
        ("/abs/x.db:_t1", DuckDBTable("/abs/x.db", "_t1")),
        ("dir:with:colons/x.duckdb:t", DuckDBTable("dir:with:colons/x.duckdb", "t")),
        ("labels", DuckDBTable("default.duckdb", "labels")),
        ("Labels_2", DuckDBTable("default.duckdb", "Labels_2")),
    ],
)
def test_parse_table_spec(spec: str, expected: object) -> None:
    """Each accepted form parses to the expected table."""
    assert parse_table_spec(spec, default_database="default.duckdb") == expected


@pytest.mark.parametrize(
    ("spec", "default_database", "message"),
    [
        ("", "d.duckdb", "empty"),
        ("   ", "d.duckdb", "empty"),
        ("labels", None, "needs a default DuckDB file"),
        (":labels", "d.duckdb", "no DuckDB file"),
        ("x.duckdb:", "d.duckdb", "not a valid table name"),
        ("x.duckdb:main.labels", "d.duckdb", "not a valid table name"),
        ("x.duckdb:my-table", "d.duckdb", "not a valid table name"),
        ("x.duckdb:1abc", "d.duckdb", "not a valid table name"),
        ("dataset.table", "d.duckdb", "not a table spec"),
        ("p.d.t", "d.duckdb", "not a table spec"),  # project ids have 6 to 30 characters
        ("My-Project:ds.t", "d.duckdb", "not a valid table name"),
        ("has space", "d.duckdb", "not a table spec"),
    ],
)
def test_parse_table_spec_refuses(spec: str, default_database: str | None, message: str) -> None:
    """Malformed specs raise a ValueError that names the spec and the accepted forms."""
    with pytest.raises(ValueError, match=message) as error:
        parse_table_spec(spec, default_database=default_database)
    assert repr(spec) in str(error.value)
    assert "project:dataset.table" in str(error.value)


def test_table_spec_names() -> None:
    """Specs render as Beam's spec, GoogleSQL and quoted DuckDB names."""
    bq = BigQueryTable("my-project", "ds", "t")
    assert bq.beam_spec == "my-project:ds.t"
    assert bq.sql_name == "`my-project.ds.t`"
    assert str(bq) == "my-project:ds.t"
    assert DuckDBTable("x.duckdb", "labels").sql_name == '"labels"'
    assert str(DuckDBTable("x.duckdb", "labels")) == "x.duckdb:labels"


# --- Arrow <-> BigQuery schemas ----------------------------------------------


def _described(name: str, type_: pa.DataType, text: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={DESCRIPTION_KEY: text.encode()})


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        (pa.field("a", pa.int64()), {"name": "a", "type": "INT64"}),
        (pa.field("a", pa.int32()), {"name": "a", "type": "INT64"}),
        (pa.field("a", pa.int8()), {"name": "a", "type": "INT64"}),
        (pa.field("a", pa.uint32()), {"name": "a", "type": "INT64"}),
        (pa.field("a", pa.float64()), {"name": "a", "type": "FLOAT64"}),
        (pa.field("a", pa.float32()), {"name": "a", "type": "FLOAT64"}),
        (pa.field("a", pa.string()), {"name": "a", "type": "STRING"}),
        (pa.field("a", pa.large_string()), {"name": "a", "type": "STRING"}),
        (pa.field("a", pa.binary()), {"name": "a", "type": "BYTES"}),
        (pa.field("a", pa.large_binary()), {"name": "a", "type": "BYTES"}),
        (pa.field("a", pa.bool_()), {"name": "a", "type": "BOOL"}),
        (pa.field("a", pa.date32()), {"name": "a", "type": "DATE"}),
        (pa.field("a", pa.timestamp("us", tz="UTC")), {"name": "a", "type": "TIMESTAMP"}),
        (pa.field("a", pa.timestamp("us")), {"name": "a", "type": "DATETIME"}),
        (
            pa.field("a", pa.int64(), nullable=False),
            {"name": "a", "type": "INT64", "mode": "REQUIRED"},
        ),
        (
            _described("a", pa.string(), "The path."),
            {"name": "a", "type": "STRING", "description": "The path."},
        ),
        (
            _described("a", pa.string(), "The path.", nullable=False),
            {"name": "a", "type": "STRING", "mode": "REQUIRED", "description": "The path."},
        ),
    ],
)
def test_arrow_to_bigquery_field(field: pa.Field, expected: dict[str, str]) -> None:
    """Each Arrow type maps to its BigQuery type; mode only when REQUIRED."""
    converted = arrow_to_bigquery_schema(pa.schema([field]))
    assert converted == {"fields": [expected]}
    assert list(converted["fields"][0]) == list(expected)  # stable key order


def test_arrow_to_bigquery_explicit_mode() -> None:
    """With explicit_mode, nullable columns say NULLABLE."""
    schema = pa.schema([pa.field("a", pa.int64()), pa.field("b", pa.string(), nullable=False)])
    assert arrow_to_bigquery_schema(schema, explicit_mode=True) == {
        "fields": [
            {"name": "a", "type": "INT64", "mode": "NULLABLE"},
            {"name": "b", "type": "STRING", "mode": "REQUIRED"},
        ]
    }


@pytest.mark.parametrize(
    "type_", [pa.uint64(), pa.list_(pa.int64()), pa.struct([("x", pa.int64())]), pa.null()]
)
def test_arrow_to_bigquery_refuses(type_: pa.DataType) -> None:
    """Types with no BigQuery column type here raise, naming the column."""
    with pytest.raises(ValueError, match=r"^labels_x: Arrow type"):
        arrow_to_bigquery_schema(pa.schema([pa.field("labels_x", type_)]))


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ({"name": "a", "type": "INT64"}, pa.field("a", pa.int64())),
        ({"name": "a", "type": "INTEGER"}, pa.field("a", pa.int64())),
        ({"name": "a", "type": "FLOAT64"}, pa.field("a", pa.float64())),
        ({"name": "a", "type": "FLOAT"}, pa.field("a", pa.float64())),
        ({"name": "a", "type": "STRING"}, pa.field("a", pa.string())),
        ({"name": "a", "type": "BYTES"}, pa.field("a", pa.binary())),
        ({"name": "a", "type": "BOOL"}, pa.field("a", pa.bool_())),
        ({"name": "a", "type": "BOOLEAN"}, pa.field("a", pa.bool_())),
        ({"name": "a", "type": "bool"}, pa.field("a", pa.bool_())),
        ({"name": "a", "type": "DATE"}, pa.field("a", pa.date32())),
        ({"name": "a", "type": "TIMESTAMP"}, pa.field("a", pa.timestamp("us", tz="UTC"))),
        ({"name": "a", "type": "DATETIME"}, pa.field("a", pa.timestamp("us"))),
        ({"name": "a", "type": "INT64", "mode": "NULLABLE"}, pa.field("a", pa.int64())),
        (
            {"name": "a", "type": "INT64", "mode": "REQUIRED"},
            pa.field("a", pa.int64(), nullable=False),
        ),
        (
            {"name": "a", "type": "STRING", "description": "The path."},
            _described("a", pa.string(), "The path."),
        ),
    ],
)
def test_bigquery_to_arrow_field(field: dict[str, str], expected: pa.Field) -> None:
    """Each BigQuery type maps to its Arrow type; no mode means nullable."""
    converted = bigquery_to_arrow_schema({"fields": [field]})
    assert converted.equals(pa.schema([expected]), check_metadata=True)


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"field": []}, "expected"),
        ({"fields": [{"type": "INT64"}]}, "field 0 has no name"),
        ({"fields": ["a"]}, "field 0 has no name"),
        ({"fields": [{"name": "a", "type": "GEOGRAPHY"}]}, "a: unsupported type"),
        ({"fields": [{"name": "a"}]}, "a: unsupported type"),
        ({"fields": [{"name": "a", "type": "INT64", "mode": "REPEATED"}]}, "a: unsupported mode"),
        ({"fields": [{"name": "a", "type": "RECORD", "fields": []}]}, "a: unsupported type"),
        (
            {"fields": [{"name": "a", "type": "INT64"}, {"name": "a", "type": "STRING"}]},
            "a: column appears twice",
        ),
    ],
)
def test_bigquery_to_arrow_refuses(schema: dict[str, Any], message: str) -> None:
    """Malformed or unsupported BigQuery schemas raise, naming the column."""
    with pytest.raises(ValueError, match=message):
        bigquery_to_arrow_schema(schema)


# The first fields of the original pipeline's mimic_cxr_bigquery_labels_schema.json
# (no "mode" keys).
LEGACY_SCHEMA = {
    "fields": [
        {"name": "patient", "type": "INT64", "description": "Patient unique identifier"},
        {"name": "path", "type": "STRING", "description": "The relative path to the .jpg file."},
        {
            "name": "no_finding",
            "type": "INT64",
            "description": "A label generated by named entity extraction on the radiology note.",
        },
    ]
}


def test_legacy_bigquery_schema_round_trips() -> None:
    """A legacy schema without modes survives BigQuery -> Arrow -> BigQuery unchanged."""
    arrow = bigquery_to_arrow_schema(LEGACY_SCHEMA)
    assert all(field.nullable for field in arrow)
    assert arrow_to_bigquery_schema(arrow) == LEGACY_SCHEMA


def test_encode_bigquery_row() -> None:
    """BYTES values become base64 text; everything else passes through."""
    row = {"path": "a.jpg", "image": b"\x00\xffjpg", "thumb": None, "n": 3}
    assert encode_bigquery_row(row, frozenset({"image", "thumb"})) == {
        "path": "a.jpg",
        "image": "AP9qcGc=",
        "thumb": None,
        "n": 3,
    }


@pytest.mark.parametrize(
    ("method", "disposition"),
    [
        (BigQueryWriteMethod.FILE_LOADS, "WRITE_TRUNCATE"),
        (BigQueryWriteMethod.STREAMING_INSERTS, "WRITE_APPEND"),
    ],
)
def test_write_disposition(method: BigQueryWriteMethod, disposition: str) -> None:
    """File loads replace the table; streaming inserts cannot, so they append."""
    assert write_disposition(method) == disposition


def test_table_sink_picks_backend(tmp_path: Path) -> None:
    """The spec chooses the sink; a BigQuery JSON schema is accepted for both."""
    assert isinstance(table_sink("my-project:ds.t", SCHEMA), WriteBigQueryTable)
    assert isinstance(table_sink("my-project:ds.t", LEGACY_SCHEMA), WriteBigQueryTable)
    assert isinstance(table_sink(f"{tmp_path}/x.duckdb:t", SCHEMA), WriteDuckDBTable)
    assert isinstance(
        table_sink("t", LEGACY_SCHEMA, default_database=str(tmp_path / "x.duckdb")),
        WriteDuckDBTable,
    )
    with pytest.raises(ValueError, match="unsupported type"):
        WriteTable("my-project:ds.t", {"fields": [{"name": "g", "type": "GEOGRAPHY"}]})


# --- Rows -> Arrow -----------------------------------------------------------

SCHEMA = pa.schema(
    [
        pa.field("path", pa.string(), nullable=False),
        pa.field("patient", pa.int64(), nullable=False),
        pa.field("score", pa.float64()),
        pa.field("note", pa.string()),
        pa.field("image", pa.binary()),
        pa.field("frontal", pa.bool_()),
    ]
)
DUCKDB_TYPES = [
    ("path", "VARCHAR", "NO"),
    ("patient", "BIGINT", "NO"),
    ("score", "DOUBLE", "YES"),
    ("note", "VARCHAR", "YES"),
    ("image", "BLOB", "YES"),
    ("frontal", "BOOLEAN", "YES"),
]


def _row(index: int, **changes: Any) -> dict[str, Any]:
    row = {
        "path": f"files/p{index}/s{index}.jpg",
        "patient": 10_000_000 + index,
        "score": index / 4,
        "note": f"note {index}",
        "image": bytes([index % 256]) * 3,
        "frontal": index % 2 == 0,
    }
    row.update(changes)
    return row


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            {k: v for k, v in _row(1).items() if k != "note"},
            r"files/p1/s1.jpg: .*missing columns \['note'\]",
        ),
        ({**_row(1), "extra": 1}, r"unexpected columns \['extra'\]"),
        (_row(1, patient="ten"), r"files/p1/s1.jpg: patient: 'ten' is not a valid int64"),
        (_row(1, patient=1.5), r"files/p1/s1.jpg: patient: 1.5 is not a valid int64"),
        (_row(1, patient=None), r"files/p1/s1.jpg: patient: null in a non-nullable column"),
        (_row(1, patient=True), r"files/p1/s1.jpg: patient: True is not a valid int64"),
        (_row(1, patient=2**63), r"files/p1/s1.jpg: patient: 9223372036854775808 is not"),
        (_row(1, frontal="yes"), r"files/p1/s1.jpg: frontal: 'yes' is not a valid bool"),
        (_row(1, score="0.5"), r"files/p1/s1.jpg: score: '0.5' is not a valid double"),
        (_row(1, note=3), r"files/p1/s1.jpg: note: 3 is not a valid string"),
    ],
)
def test_rows_to_table_refuses(row: dict[str, Any], message: str) -> None:
    """Rows that do not fit the schema raise, naming the row's path and the column."""
    with pytest.raises(ValueError, match=message):
        rows_to_table([_row(0), row], SCHEMA)


def test_rows_to_table_keeps_schema() -> None:
    """The table has exactly the given schema, whatever order the dict keys are in."""
    rows = [dict(reversed(list(_row(i).items()))) for i in range(3)]
    table = rows_to_table(rows, SCHEMA)
    assert table.schema.equals(SCHEMA)
    assert table.to_pylist() == [_row(i) for i in range(3)]


# --- WriteTable to DuckDB ----------------------------------------------------


def _write(
    rows: list[dict[str, Any]],
    table: str,
    schema: Any = SCHEMA,
    default_database: str | None = None,
) -> None:
    with BeamTestPipeline(runner="FnApiRunner") as p:
        written = (
            p | beam.Create(rows) | WriteTable(table, schema, default_database=default_database)
        )
        assert_that(written, equal_to([len(rows)]))


def _describe(database: Path, table: str) -> list[tuple[str, str, str]]:
    with duckdb.connect(str(database), read_only=True) as con:
        return [(r[0], r[1], r[2]) for r in con.execute(f"DESCRIBE {table}").fetchall()]


def _read(database: Path, table: str) -> pa.Table:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.sql(f"SELECT * FROM {table} ORDER BY path").to_arrow_table()


def test_write_duckdb_columns_types_values(tmp_path: Path) -> None:
    """The table has the schema's columns in order, its types, and the rows' values."""
    database = tmp_path / "out" / "tables.duckdb"
    rows = [_row(i) for i in range(25)]
    with BeamTestPipeline(runner="FnApiRunner") as p:
        written = (
            p
            | beam.Create(rows)
            | WriteDuckDBTable(DuckDBTable(str(database), "labels"), SCHEMA, row_group_size=4)
        )
        assert_that(written, equal_to([len(rows)]))
    assert _describe(database, "labels") == DUCKDB_TYPES
    table = _read(database, "labels")
    assert table.schema.types == SCHEMA.types
    assert table.schema.names == SCHEMA.names
    assert table.to_pylist() == sorted(rows, key=lambda r: r["path"])


def test_write_duckdb_bare_name_and_bigquery_schema(tmp_path: Path) -> None:
    """A bare name lands in the default file; a BigQuery JSON schema works for DuckDB too."""
    database = tmp_path / "tables.duckdb"
    rows = [{"patient": 1, "path": "a.jpg", "no_finding": 3}]
    _write(rows, "labels", LEGACY_SCHEMA, default_database=str(database))
    assert _describe(database, "labels") == [
        ("patient", "BIGINT", "YES"),
        ("path", "VARCHAR", "YES"),
        ("no_finding", "BIGINT", "YES"),
    ]
    with duckdb.connect(str(database), read_only=True) as con:
        comments = con.execute(
            "SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'labels'"
        ).fetchall()
    assert comments == [(f["name"], f["description"]) for f in LEGACY_SCHEMA["fields"]]


def test_write_duckdb_nullable_columns(tmp_path: Path) -> None:
    """Nulls in nullable columns are stored as NULL."""
    database = tmp_path / "tables.duckdb"
    rows = [_row(1, score=None, note=None, image=None, frontal=None), _row(2)]
    _write(rows, f"{database}:labels")
    assert _read(database, "labels").to_pylist() == rows
    with duckdb.connect(str(database)) as con, pytest.raises(duckdb.ConstraintException):
        con.execute("INSERT INTO labels (path, patient) VALUES (NULL, 1)")


def test_write_duckdb_rerun_replaces(tmp_path: Path) -> None:
    """A second run replaces the rows and the columns (write-truncate); other tables stay."""
    database = tmp_path / "tables.duckdb"
    _write([_row(i) for i in range(5)], f"{database}:labels")
    _write([_row(9)], f"{database}:other")
    schema = pa.schema([pa.field("path", pa.string()), pa.field("edema", pa.int64())])
    _write([{"path": "x.jpg", "edema": 3}], f"{database}:labels", schema)
    assert _describe(database, "labels") == [("path", "VARCHAR", "YES"), ("edema", "BIGINT", "YES")]
    assert _read(database, "labels").to_pylist() == [{"path": "x.jpg", "edema": 3}]
    assert _read(database, "other").to_pylist() == [_row(9)]


def test_write_duckdb_empty_input(tmp_path: Path) -> None:
    """No rows still gives the table, with its columns and types, empty; and replaces old rows."""
    database = tmp_path / "tables.duckdb"
    _write([_row(1)], f"{database}:labels")
    _write([], f"{database}:labels")
    assert _describe(database, "labels") == DUCKDB_TYPES
    assert _read(database, "labels").num_rows == 0
    _write([], f"{database}:fresh")
    assert _describe(database, "fresh") == DUCKDB_TYPES


def test_write_duckdb_ignores_stale_staging(tmp_path: Path) -> None:
    """Parquet left in the staging area by an earlier run never reaches the table."""
    database = tmp_path / "tables.duckdb"
    root = Path(staging_root(DuckDBTable(str(database), "labels")))
    stale = [
        root / "0123abcd" / "part-00000-of-00001.parquet",
        root / "part-00000-of-00001.parquet",
    ]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(rows_to_table([_row(99)], SCHEMA), path)
    _write([_row(1), _row(2)], f"{database}:labels")
    assert _read(database, "labels").to_pylist() == [_row(1), _row(2)]
    assert all(path.exists() for path in stale)  # other runs' files are not ours to delete
    assert sorted(os.listdir(root)) == ["0123abcd", "part-00000-of-00001.parquet"]


def test_write_duckdb_reads_only_committed_files(tmp_path: Path) -> None:
    """An uncommitted file in the run's own staging folder never reaches the table.

    A bundle that failed and was retried leaves such a file.
    """
    database = tmp_path / "tables.duckdb"
    table = DuckDBTable(str(database), "labels")
    leftover = Path(staging_root(table)) / "run1" / "part-failed-attempt.parquet"
    leftover.parent.mkdir(parents=True)
    pq.write_table(rows_to_table([_row(99)], SCHEMA), leftover)
    with BeamTestPipeline(runner="FnApiRunner") as p:
        written = (
            p | beam.Create([_row(1), _row(2)]) | WriteDuckDBTable(table, SCHEMA, run_id="run1")
        )
        assert_that(written, equal_to([2]))
    assert _read(database, "labels").to_pylist() == [_row(1), _row(2)]
    assert not leftover.parent.exists()


def test_write_duckdb_removes_its_staging(tmp_path: Path) -> None:
    """After a successful write the staging folders are gone."""
    database = tmp_path / "tables.duckdb"
    _write([_row(1)], f"{database}:labels")
    assert sorted(os.listdir(tmp_path)) == ["tables.duckdb"]


def test_write_duckdb_bad_row_fails(tmp_path: Path) -> None:
    """A row that does not fit the schema fails the pipeline and leaves the old table."""
    database = tmp_path / "tables.duckdb"
    _write([_row(1)], f"{database}:labels")
    with pytest.raises(Exception, match=r"files/p2/s2\.jpg: patient: null in a non-nullable"):
        _write([_row(2, patient=None)], f"{database}:labels")
    assert _read(database, "labels").to_pylist() == [_row(1)]


def test_write_duckdb_refuses_remote_database() -> None:
    """A DuckDB file must be local."""
    with pytest.raises(ValueError, match="local file"):
        WriteTable("gs://bucket/tables.duckdb:labels", SCHEMA)


# --- Label queries -----------------------------------------------------------

LABEL_ROWS = [
    {"path": "files/p1/s1/a.jpg", "patient": 1, "view": "PA", "edema": 1.0},
    {"path": "files/p2/s2/b.jpg", "patient": 2, "view": "LATERAL", "edema": None},
]
LABEL_SCHEMA = pa.schema(
    [("path", pa.string()), ("patient", pa.int64()), ("view", pa.string()), ("edema", pa.float64())]
)


def _write_csv(path: Path, opener: Any = open) -> None:
    with opener(path, "wt", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(LABEL_ROWS[0]))
        writer.writeheader()
        writer.writerows(LABEL_ROWS)


def _label_sources(tmp_path: Path) -> dict[str, tuple[str, str | None]]:
    _write_csv(tmp_path / "labels.csv")
    _write_csv(tmp_path / "labels.csv.gz", gzip.open)
    pq.write_table(
        pa.Table.from_pylist(LABEL_ROWS, schema=LABEL_SCHEMA), tmp_path / "labels.parquet"
    )
    database = tmp_path / "labels.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute(
            "CREATE TABLE labels (path VARCHAR, patient BIGINT, view VARCHAR, edema DOUBLE)"
        )
        con.executemany(
            "INSERT INTO labels VALUES (?, ?, ?, ?)", [list(r.values()) for r in LABEL_ROWS]
        )
    return {
        "csv": (f"SELECT * FROM read_csv('{tmp_path / 'labels.csv'}')", None),
        "csv.gz": (f"SELECT * FROM read_csv('{tmp_path / 'labels.csv.gz'}')", None),
        "parquet": (f"SELECT * FROM read_parquet('{tmp_path / 'labels.parquet'}')", None),
        "duckdb": ("SELECT * FROM labels", str(database)),
    }


@pytest.mark.parametrize("kind", ["csv", "csv.gz", "parquet", "duckdb"])
def test_query_duckdb_sources(tmp_path: Path, kind: str) -> None:
    """CSV, CSV.gz, Parquet and DuckDB files give the same rows and typed columns."""
    sql, database = _label_sources(tmp_path)[kind]
    result = LabelsQuery(sql, database=database).run()
    assert result.schema.equals(LABEL_SCHEMA)  # all-integer CSV column stays BIGINT
    assert result.to_pylist() == LABEL_ROWS


@pytest.mark.parametrize("kind", ["csv", "duckdb"])
def test_query_duckdb_empty_result_keeps_types(tmp_path: Path, kind: str) -> None:
    """Types come from the result schema, so an empty result still has them."""
    sql, database = _label_sources(tmp_path)[kind]
    result = query_duckdb(f"{sql} WHERE false", database=database)
    assert result.num_rows == 0
    assert result.schema.equals(LABEL_SCHEMA)


def test_query_duckdb_database_is_read_only(tmp_path: Path) -> None:
    """The labels database is opened read-only."""
    _, database = _label_sources(tmp_path)["duckdb"]
    with pytest.raises(duckdb.Error, match="read-only"):
        query_duckdb("CREATE TABLE x AS SELECT 1 AS a", database=database)


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (pa.schema([("image", pa.string())]), "no 'path' column"),
        (pa.schema([("path", pa.int64())]), "'path' must be text"),
        (pa.schema([("path", pa.string()), ("a", pa.int64()), ("a", pa.int64())]), r"\['a'\]"),
    ],
)
def test_check_labels_schema_refuses(schema: pa.Schema, message: str) -> None:
    """A labels result needs one text path column and unique column names."""
    with pytest.raises(ValueError, match=message):
        check_labels_schema(schema)


def test_labels_query_run_checks_path(tmp_path: Path) -> None:
    """Running a query whose result has no path column fails."""
    with pytest.raises(ValueError, match="no 'path' column"):
        LabelsQuery("SELECT 1 AS patient").run()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "my-project:ds.labels",
            LabelsQuery(
                "SELECT * FROM `my-project.ds.labels`", QueryBackend.BIGQUERY, project="p2"
            ),
        ),
        ("x.duckdb:labels", LabelsQuery('SELECT * FROM "labels"', database="x.duckdb")),
        ("labels", LabelsQuery('SELECT * FROM "labels"', database="default.duckdb")),
    ],
)
def test_labels_query_from_table(spec: str, expected: LabelsQuery) -> None:
    """A table spec reads the whole table, in the backend the spec names."""
    assert LabelsQuery.from_table(spec, default_database="default.duckdb", project="p2") == expected


def test_labels_query_from_duckdb_table_runs(tmp_path: Path) -> None:
    """A DuckDB table spec reads that table."""
    _, database = _label_sources(tmp_path)["duckdb"]
    assert LabelsQuery.from_table(f"{database}:labels").run().to_pylist() == LABEL_ROWS


def test_labels_query_refuses_database_for_bigquery() -> None:
    """A DuckDB file makes no sense for a BigQuery query."""
    with pytest.raises(ValueError, match="DuckDB database file"):
        LabelsQuery("SELECT 1", QueryBackend.BIGQUERY, database="x.duckdb")


# --- Options -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], None),
        (["--labels_query", "SELECT 1"], LabelsQuery("SELECT 1")),
        (
            ["--labels_query", "SELECT 1", "--labels_db", "l.duckdb"],
            LabelsQuery("SELECT 1", database="l.duckdb"),
        ),
        (
            ["--labels_query", "SELECT 1", "--query_backend", "bigquery", "--project", "proj-1"],
            LabelsQuery("SELECT 1", QueryBackend.BIGQUERY, project="proj-1"),
        ),
        (
            ["--labels_table", "my-project:ds.t", "--project", "proj-1"],
            LabelsQuery("SELECT * FROM `my-project.ds.t`", QueryBackend.BIGQUERY, project="proj-1"),
        ),
        (
            ["--labels_table", "t", "--labels_db", "l.duckdb"],
            LabelsQuery('SELECT * FROM "t"', database="l.duckdb"),
        ),
    ],
)
def test_labels_query_from_options(argv: list[str], expected: LabelsQuery | None) -> None:
    """The labels flags build the documented query."""
    assert labels_query_from_options(PipelineOptions(argv)) == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--labels_query", "SELECT 1", "--labels_table", "t"], "not both"),
        (
            ["--labels_query", "SELECT 1", "--query_backend", "bigquery", "--labels_db", "x"],
            "--labels_db is for DuckDB",
        ),
        (["--labels_table", "t"], "needs a default DuckDB file"),
    ],
)
def test_labels_query_from_options_refuses(argv: list[str], message: str) -> None:
    """Contradictory labels flags raise."""
    with pytest.raises(ValueError, match=message):
        labels_query_from_options(PipelineOptions(argv))


def test_table_options_output_flags() -> None:
    """--output_bq_table is an alias of --output_table; defaults are documented."""
    options = PipelineOptions(["--output_bq_table", "my-project:ds.t"]).view_as(TableOutputOptions)
    assert options.output_table == "my-project:ds.t"
    assert options.bigquery_write_method == "FILE_LOADS"
    assert PipelineOptions([]).view_as(LabelsSourceOptions).query_backend == "auto"
    options = PipelineOptions(["--output_table=x.duckdb:t"]).view_as(TableOutputOptions)
    assert options.output_table == "x.duckdb:t"


@pytest.mark.parametrize(
    ("argv", "backend"),
    [
        (["--query", "SELECT path FROM `project.dataset.table`"], QueryBackend.BIGQUERY),
        (["--query", "SELECT path FROM `dataset.table` t"], QueryBackend.BIGQUERY),
        (["--query", "SELECT path FROM read_csv('a.csv')"], QueryBackend.DUCKDB),
        (["--query", "SELECT `a b` AS path FROM t"], QueryBackend.DUCKDB),
        (["--query", "SELECT path FROM `x`"], QueryBackend.DUCKDB),
        (["--query", "SELECT 1 FROM `a.b`", "--query_backend", "duckdb"], QueryBackend.DUCKDB),
        (["--query", "SELECT 1", "--query_backend", "bigquery"], QueryBackend.BIGQUERY),
    ],
)
def test_query_backend_auto(argv: list[str], backend: QueryBackend) -> None:
    """auto: BigQuery for a backticked dataset.table name (the original's queries), else DuckDB."""
    assert query_backend(PipelineOptions(argv)) is backend


def test_write_table_from_options(tmp_path: Path) -> None:
    """--output_table builds a WriteTable; without it there is nothing to write."""
    default = str(tmp_path / "tables.duckdb")
    assert write_table_from_options(PipelineOptions([]), SCHEMA, default_database=default) is None
    options = PipelineOptions(["--output_table", "labels"])
    transform = write_table_from_options(options, SCHEMA, default_database=default)
    assert isinstance(transform, WriteTable)
    with BeamTestPipeline(runner="FnApiRunner") as p:
        _ = p | beam.Create([_row(1)]) | transform
    assert _read(tmp_path / "tables.duckdb", "labels").to_pylist() == [_row(1)]


def test_table_options_help_documents_every_flag() -> None:
    """Every table flag has help text, and the alias is listed with its flag."""
    parser = argparse.ArgumentParser()
    TableOutputOptions._add_argparse_args(parser)
    LabelsSourceOptions._add_argparse_args(parser)
    flags = {option for action in parser._actions for option in action.option_strings}
    assert {
        "--output_table",
        "--output_bq_table",
        "--bigquery_write_method",
        "--labels_query",
        "--labels_table",
        "--labels_db",
        "--query_backend",
    } <= flags
    assert all(action.help for action in parser._actions)
