"""Decoded SQL views: beside each labels and predictions table, codes as names.

Each view is read back and compared row by row with its coded table, each
code decoded through the declaration's own enum classes (`assert_decoded`).
The same against BigQuery is in ``test_cloud_pipelines.py``.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import keras
import pyarrow as pa
import pytest

from datathon_etl.datasets.mimic_cxr import DATASET as MIMIC_CXR
from datathon_etl.datasets.mimic_cxr.synthetic import write_sample
from datathon_etl.datasets.mimic_cxr_jpg import DATASET as MIMIC_CXR_JPG
from datathon_etl.datasets.mimic_cxr_jpg.synthetic import write_sample as write_jpg_sample
from datathon_etl.framework.manifest import DECODED_VIEWS, Manifest
from datathon_etl.framework.schema import read_dataset
from datathon_etl.framework.tables import DuckDBTable
from datathon_etl.framework.tables.decoded_view import (
    CODES_KEY,
    codes_metadata,
    create_decoded_view,
)
from datathon_etl.generated.mimic_cxr import rows
from datathon_etl.generated.mimic_cxr.infer import main as infer
from datathon_etl.generated.mimic_cxr.ingest import main as ingest
from datathon_etl.generated.mimic_cxr_jpg.ingest import main as ingest_jpg
from tests.pipeline_outputs import assert_decoded, duckdb_table

SIZE = 32


def _outputs(out: Path) -> list[str]:
    return [
        "--output_dir",
        str(out),
        "--output_tfrecord_dir",
        str(out / "tfrecords"),
        "--output_image_shape",
        str(SIZE),
        str(SIZE),
    ]


@pytest.fixture(scope="module")
def mimic_cxr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MIMIC-CXR ingestion's output folder."""
    root = tmp_path_factory.mktemp("mimic_cxr")
    sample = write_sample(root / "sample", images=16, full_size=0)
    tars, csvs = sample.tars[0].parent / "*.tar", sample.csvs[0].parent / "*.csv.gz"
    code = ingest(["--input_tars", str(tars), "--input_csv", str(csvs), *_outputs(root / "out")])
    assert code == 0
    return root / "out"


@pytest.fixture(scope="module")
def mimic_cxr_jpg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MIMIC-CXR-JPG ingestion's output folder: some images without study labels (NULL)."""
    root = tmp_path_factory.mktemp("mimic_cxr_jpg")
    sample = write_jpg_sample(root / "sample", images=16, tars=False)
    assert sample.unlabelled
    inputs = ["--input_prefix", f"{sample.root}/files/", "--input_csv", f"{sample.root}/*.csv.gz"]
    ingest_jpg([*inputs, *_outputs(root / "out")])  # exit 1: the sample's defects
    return root / "out"


@pytest.mark.parametrize(
    ("run", "dataset"), [("mimic_cxr", MIMIC_CXR), ("mimic_cxr_jpg", MIMIC_CXR_JPG)]
)
def test_the_labels_view_is_the_labels_table_decoded(request, run, dataset):
    """``<name>_labels_decoded``: every row of the labels table, codes as names, in the manifest."""
    out: Path = request.getfixturevalue(run)
    database = out / "tables.duckdb"
    declared = read_dataset(dataset, dataset.name).labels_table
    assert_decoded(
        duckdb_table(database, f"{dataset.name}_labels_decoded"),
        duckdb_table(database, f"{dataset.name}_labels"),
        declared,
    )
    views = Manifest.read(str(out / "_manifest.json")).parameters[DECODED_VIEWS]
    assert views == {
        f"{database}:{dataset.name}_labels": f"{database}:{dataset.name}_labels_decoded"
    }


def test_the_view_reads_names_in_sql(mimic_cxr):
    """A query says ``dataset = 'train'`` and ``edema = 'positive'``, and counts as the codes do."""
    with duckdb.connect(str(mimic_cxr / "tables.duckdb"), read_only=True) as con:
        by_name = con.execute(
            "SELECT count(*) FROM mimic_cxr_labels_decoded "
            "WHERE dataset = 'train' AND edema = 'positive' AND view = 'frontal'"
        ).fetchone()
        by_code = con.execute(
            "SELECT count(*) FROM mimic_cxr_labels WHERE dataset = 0 AND edema = 3 AND view = 0"
        ).fetchone()
    assert by_name == by_code


def test_the_predictions_view_is_the_predictions_table_decoded(mimic_cxr, tmp_path):
    """``infer`` writes ``mimic_cxr_predictions_decoded``: split and view as names, logits as is."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((SIZE, SIZE, 1))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    model = tmp_path / "tiny.keras"
    keras.Model(inputs, keras.layers.Dense(len(rows.TARGET_COLUMNS))(pooled)).save(model)
    table = f"{tmp_path / 'team.duckdb'}:mimic_cxr_predictions"
    command = ["--input_tfrecord_pattern", str(mimic_cxr / "tfrecords" / "*" / "*" / "*.tfrecord")]
    command += ["--keras_model", str(model), "--predictions_table", table]
    assert infer([*command, "--output_dir", str(tmp_path / "infer")]) == 0
    database = tmp_path / "team.duckdb"
    assert_decoded(
        duckdb_table(database, "mimic_cxr_predictions_decoded"),
        duckdb_table(database, "mimic_cxr_predictions"),
        read_dataset(MIMIC_CXR, "mimic_cxr").predictions_table,
    )
    views = Manifest.read(str(tmp_path / "infer" / "_manifest.json")).parameters[DECODED_VIEWS]
    assert views == {table: f"{database}:mimic_cxr_predictions_decoded"}


def _field(name: str, codes: dict[int, str] | None = None) -> pa.Field:
    metadata = {CODES_KEY: codes_metadata(codes).encode()} if codes else None
    return pa.field(name, pa.int64(), metadata=metadata)


@pytest.mark.parametrize(
    ("fields", "rows_in", "expected"),
    [
        # A table without coded columns (images-to-tfrecord's) gets no view.
        ([_field("path"), _field("score")], [], None),
        (
            [_field("path"), _field("side", {0: "left", 1: "right"}), _field("age")],
            [(1, 0, 30), (2, 1, None), (3, None, 40), (4, 7, 50)],
            # A code the declaration lacks (never written by a pipeline) reads as NULL.
            [(1, "left", 30), (2, "right", None), (3, None, 40), (4, None, 50)],
        ),
    ],
)
def test_create_decoded_view_on_duckdb(tmp_path, fields, rows_in, expected):
    """Coded columns decode, the others pass through in order; no coded column, no view."""
    schema = pa.schema(fields)
    table = DuckDBTable(str(tmp_path / "t.duckdb"), "t")
    data = pa.Table.from_pylist(  # noqa: F841 (DuckDB reads it by name)
        [dict(zip(schema.names, r, strict=True)) for r in rows_in], schema=schema
    )
    with duckdb.connect(table.database) as con:
        con.execute("CREATE TABLE t AS SELECT * FROM data")
    view = create_decoded_view(table, schema)
    if expected is None:
        assert view is None
        with duckdb.connect(table.database) as con:
            assert (
                con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall() == []
            )
        return
    assert view == DuckDBTable(table.database, "t_decoded")
    with duckdb.connect(table.database) as con:
        assert con.sql("SELECT * FROM t_decoded ORDER BY path").fetchall() == expected


def test_a_table_in_the_views_place_is_an_error(tmp_path):
    """A table already named ``<table>_decoded`` is never replaced: a ValueError naming it."""
    database = str(tmp_path / "t.duckdb")
    with duckdb.connect(database) as con:
        con.execute("CREATE TABLE t (side BIGINT); CREATE TABLE t_decoded (x BIGINT)")
    schema = pa.schema([_field("side", {0: "left"})])
    with pytest.raises(ValueError, match="t_decoded"):
        create_decoded_view(DuckDBTable(database, "t"), schema)


@pytest.mark.parametrize("name", ["it's", "two words", ""])
def test_code_names_are_plain_words(name):
    """A name SQL would need to escape is refused when the codes are written."""
    with pytest.raises(ValueError, match="plain word"):
        codes_metadata({0: name})
