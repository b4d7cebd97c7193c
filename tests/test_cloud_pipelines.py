"""The pipelines end to end on GCS and BigQuery (the emulators), against the local defaults.

Each test runs a pipeline twice on the same inputs: once locally with the
embedded defaults (files on disk, DuckDB), once with every input and output
on ``gs://`` (fake-gcs-server) and its tables in BigQuery (bqemulator); the
two must agree output by output and row by row: images, TFRecords,
``features.json``, manifest counts, quarantine records (their ``source``
with the input location replaced) and tables (names, types, values).

Runs are in-process (``FnApiRunner``): the emulator patches exist only in
the test process (see ``tests/emulators``).
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import keras
import pyarrow as pa
import pytest
from google.cloud import bigquery as bq

from datathon_etl.datasets.mimic_cxr import DATASET
from datathon_etl.datasets.mimic_cxr.synthetic import Sample, write_sample
from datathon_etl.framework.manifest import DECODED_VIEWS, Manifest
from datathon_etl.framework.pipelines import images_to_tfrecord
from datathon_etl.framework.schema import Table, read_dataset
from datathon_etl.framework.tables import BigQueryWriteMethod
from datathon_etl.generated.mimic_cxr import rows
from datathon_etl.generated.mimic_cxr.infer import main as infer
from datathon_etl.generated.mimic_cxr.ingest import main as ingest
from tests.emulators import BigQueryHandle, GcsHandle
from tests.pipeline_outputs import (
    assert_decoded,
    bigquery_table,
    bigquery_view,
    digest,
    duckdb_table,
    manifest_stages,
    parquet_by_folder,
    quarantine_records,
    read_bytes,
    read_tree,
    tfrecords_by_folder,
    upload,
    webdataset_by_folder,
)

RUNNER = "--runner=FnApiRunner"
DECLARED = read_dataset(DATASET, "mimic_cxr")
SIZE = 64
METHODS = [BigQueryWriteMethod.FILE_LOADS, BigQueryWriteMethod.STREAMING_INSERTS]
DATA = Path(__file__).parent / "data"


def _digests(tree: dict[str, bytes]) -> dict[str, str]:
    return {path: digest(data) for path, data in sorted(tree.items())}


def _assert_same_table(cloud: pa.Table, local: pa.Table) -> None:
    """Same column names and types, then the same rows, one by one (both sorted by path)."""
    assert cloud.schema.names == local.schema.names
    assert cloud.schema.types == local.schema.types
    assert cloud.num_rows == local.num_rows
    for index, (cloud_row, local_row) in enumerate(
        zip(cloud.to_pylist(), local.to_pylist(), strict=True)
    ):
        assert cloud_row == local_row, f"row {index} ({local_row['path']})"


def _assert_same_run(cloud: str, local: str, locations: dict[str, str]) -> None:
    """Manifest counts and quarantine records agree (inputs' locations normalised)."""
    assert manifest_stages(cloud) == manifest_stages(local)
    assert quarantine_records(cloud, locations) == quarantine_records(local, locations)


# --- MIMIC-CXR ingestion -----------------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    """12 small images in 2 tars, with one of each defect."""
    return write_sample(
        tmp_path_factory.mktemp("sample"), images=12, full_size=0, defects=True, images_per_tar=8
    )


def _ingest_args(tars: str, csvs: str, out: str, *extra: str) -> list[str]:
    return [
        "--input_tars",
        tars,
        "--input_csv",
        csvs,
        "--output_dir",
        out,
        "--output_jpg_dir",
        f"{out}/jpg",
        "--output_tfrecord_dir",
        f"{out}/tfrecords",
        "--output_image_shape",
        str(SIZE),
        str(SIZE),
        RUNNER,
        *extra,
    ]


@pytest.fixture(scope="module")
def local_ingest(sample: Sample, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """The reference: the same sample ingested locally, labels in DuckDB."""
    out = tmp_path_factory.mktemp("local-ingest")
    root = sample.tars[0].parent
    return out, ingest(_ingest_args(f"{root}/*.tar", f"{root}/*.csv.gz", str(out)))


@pytest.mark.parametrize("method", METHODS)
def test_mimic_cxr_ingest_on_gcs_and_bigquery_matches_local(
    gcs: GcsHandle,
    bigquery: BigQueryHandle,
    sample: Sample,
    local_ingest: tuple[Path, int],
    method: BigQueryWriteMethod,
) -> None:
    """Tars and CSVs on gs://, every output on gs://, labels in BigQuery: same as local.

    Same exit code, JPG tree (byte for byte), TFRecords per split and view,
    features.json, manifest counts and quarantine; the BigQuery labels table
    equals the DuckDB one row by row, with either write method, and so does
    its decoded view, which is the table decoded.
    """
    local, local_code = local_ingest
    bucket = gcs.bucket()
    for path in (*sample.tars, *sample.csvs):
        upload(path, f"{bucket}/in/{path.name}")
    table = f"{bigquery.project}.{bigquery.dataset()}.labels"
    out = f"{bucket}/out"
    code = ingest(
        _ingest_args(
            f"{bucket}/in/*.tar",
            f"{bucket}/in/*.csv.gz",
            out,
            "--output_table",
            table,
            "--bigquery_write_method",
            str(method),
            "--project",
            bigquery.project,
            "--temp_location",
            f"{bucket}/tmp",
        )
    )

    assert code == local_code == 1  # the defects are quarantined; --max_bad_fraction is 0
    assert _digests(read_tree(f"{out}/jpg")) == _digests(read_tree(f"{local}/jpg"))
    assert tfrecords_by_folder(f"{out}/tfrecords") == tfrecords_by_folder(f"{local}/tfrecords")
    assert read_bytes(f"{out}/tfrecords/features.json") == read_bytes(
        f"{local}/tfrecords/features.json"
    )
    _assert_same_run(out, str(local), {f"{bucket}/in": "IN", str(sample.tars[0].parent): "IN"})
    left = read_tree(out, exclude=["jpg", "tfrecords", "_quarantine", "_manifest.json"])
    # The leakage report and the data card (made from the BigQuery table and the gs://
    # images), as a local run's.
    assert set(left) == {"_card.html", "_leakage.json"}
    assert left["_leakage.json"] == (local / "_leakage.json").read_bytes()
    card = left["_card.html"].decode()
    assert table.replace(".", ":", 1) in card
    assert (
        card.count("data:image/jpeg")
        == (local / "_card.html").read_text().count("data:image/jpeg")
        > 0
    )
    _assert_same_table(
        bigquery_table(bigquery.client, table),
        duckdb_table(local / "tables.duckdb", "mimic_cxr_labels"),
    )
    _assert_decoded_view(bigquery, table, out, local, "mimic_cxr_labels", DECLARED.labels_table)


def _assert_decoded_view(
    bigquery: BigQueryHandle, table: str, out: str, local: Path, local_table: str, declared: Table
) -> None:
    """``<table>_decoded`` in BigQuery: the table decoded, as the local view, in the manifest."""
    view = bigquery_view(bigquery.client, f"{table}_decoded")
    assert_decoded(view, bigquery_table(bigquery.client, table), declared)
    _assert_same_table(view, duckdb_table(local / "tables.duckdb", f"{local_table}_decoded"))
    spec = table.replace(".", ":", 1)
    views = Manifest.read(f"{out}/_manifest.json").parameters[DECODED_VIEWS]
    assert views == {spec: f"{spec}_decoded"}


def test_tfrecords_on_gcs_beside_a_local_output_dir(
    gcs: GcsHandle, sample: Sample, local_ingest: tuple[Path, int], tmp_path: Path
) -> None:
    """Local --output_dir, gs:// --output_tfrecord_dir: the shards are staged in the bucket.

    A file cannot be renamed from the local scratch folder into a bucket, so
    the TFRecords stage under their own root; the staging is gone after the run.
    """
    local, local_code = local_ingest
    root = sample.tars[0].parent
    tfrecords = f"{gcs.bucket()}/tfrecords"
    args = _ingest_args(f"{root}/*.tar", f"{root}/*.csv.gz", str(tmp_path / "out"))
    args[args.index("--output_tfrecord_dir") + 1] = tfrecords

    assert ingest(args) == local_code
    assert tfrecords_by_folder(tfrecords) == tfrecords_by_folder(f"{local}/tfrecords")
    assert set(read_tree(tfrecords, exclude=["train", "valid"])) == {"features.json"}


def test_webdataset_and_parquet_on_gcs_match_local(
    gcs: GcsHandle, sample: Sample, tmp_path: Path
) -> None:
    """WebDataset and Parquet shards on gs://, joined per shard there: the same records as local.

    ``--num_shards`` joins each shard's pieces, read back from the bucket
    (Parquet through pyarrow's reader, on Beam's file objects); the run's
    records stay local (a DuckDB table cannot live on gs://).
    """
    root = sample.tars[0].parent
    runs = {}
    for name, shards in (("local", str(tmp_path / "local")), ("gcs", f"{gcs.bucket()}/out")):
        args = _ingest_args(f"{root}/*.tar", f"{root}/*.csv.gz", str(tmp_path / name))
        args += ["--num_shards", "2", "--output_webdataset_dir", f"{shards}/wds"]
        args += ["--output_parquet_dir", f"{shards}/parquet"]
        runs[name] = (ingest(args), shards)
    (local_code, local), (code, out) = runs["local"], runs["gcs"]
    assert code == local_code
    assert webdataset_by_folder(f"{out}/wds") == webdataset_by_folder(f"{local}/wds")
    assert parquet_by_folder(f"{out}/parquet") == parquet_by_folder(f"{local}/parquet")
    written = sum(len(records) for records in webdataset_by_folder(f"{local}/wds").values())
    assert written == manifest_stages(local)["stages"]["images"]["written"] > 0
    assert set(read_tree(f"{out}/wds", exclude=["train", "valid"])) == set()
    assert set(read_tree(f"{out}/parquet", exclude=["train", "valid"])) == set()


# --- Inference ---------------------------------------------------------------


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained CNN: 64x64x1 -> one logit per label."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(len(rows.TARGET_COLUMNS))(x))
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def local_infer(
    local_ingest: tuple[Path, int], model_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, int]:
    """The reference: the local ingestion's TFRecords predicted locally, into DuckDB."""
    out = tmp_path_factory.mktemp("local-infer")
    tfrecords, _ = local_ingest
    argv = ["--tfrecords", f"{tfrecords}/tfrecords/**.tfrecord", "--model", str(model_file)]
    return out, infer([*argv, "--output_dir", str(out), "--batch_size", "4", RUNNER])


@pytest.mark.parametrize("method", METHODS)
def test_inference_on_gcs_and_bigquery_matches_local(
    gcs: GcsHandle,
    bigquery: BigQueryHandle,
    local_ingest: tuple[Path, int],
    model_file: Path,
    local_infer: tuple[Path, int],
    method: BigQueryWriteMethod,
) -> None:
    """TFRecords and model on gs://, manifest on gs://, predictions in BigQuery: same as local."""
    local, local_code = local_infer
    bucket = gcs.bucket()
    tfrecords = f"{local_ingest[0]}/tfrecords"
    for relative in read_tree(tfrecords):
        upload(Path(tfrecords) / relative, f"{bucket}/tfrecords/{relative}")
    upload(model_file, f"{bucket}/models/tiny.keras")
    table = f"{bigquery.project}.{bigquery.dataset()}.predictions"
    out = f"{bucket}/out"
    code = infer(
        [
            "--tfrecords",
            f"{bucket}/tfrecords/**.tfrecord",
            "--model",
            f"{bucket}/models/tiny.keras",
            "--output_dir",
            out,
            "--predictions_table",
            table,
            "--bigquery_write_method",
            str(method),
            "--batch_size",
            "4",
            "--project",
            bigquery.project,
            "--temp_location",
            f"{bucket}/tmp",
            RUNNER,
        ]
    )
    assert code == local_code == 0
    _assert_same_run(out, str(local), {})
    cloud_rows = bigquery_table(bigquery.client, table)
    local_rows = duckdb_table(local / "tables.duckdb", "mimic_cxr_predictions")
    assert cloud_rows.schema.names == local_rows.schema.names
    assert cloud_rows.schema.types == local_rows.schema.types
    assert cloud_rows.num_rows == local_rows.num_rows == 10
    for cloud_row, local_row in zip(cloud_rows.to_pylist(), local_rows.to_pylist(), strict=True):
        ids = {name: local_row[name] for name in rows.ID_COLUMNS}
        assert {name: cloud_row[name] for name in rows.ID_COLUMNS} == ids
        # Batches may be made up differently: equal to float32 precision.
        logits = [local_row[name] for name in rows.TARGET_COLUMNS]
        assert [cloud_row[name] for name in rows.TARGET_COLUMNS] == pytest.approx(
            logits, rel=1e-5, abs=1e-6
        ), ids["path"]
    _assert_decoded_view(
        bigquery, table, out, local, "mimic_cxr_predictions", DECLARED.predictions_table
    )


# --- images-to-tfrecord with a BigQuery label query --------------------------

CSV = DATA / "labels" / "nih_sample_rows.csv"
DUCKDB_QUERY = (
    'SELECT "Image Index" AS path, "Finding Labels" AS findings, "Patient Age" AS age, '
    f"\"Patient Gender\" = 'M' AS male FROM read_csv('{CSV}') ORDER BY path"
)
BIGQUERY_QUERY = "SELECT path, findings, age, male FROM {table} ORDER BY path"


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real NIH images, a truncated and an unlabelled copy, and a skipped text file."""
    root = tmp_path_factory.mktemp("images")
    real = sorted((DATA / "images").glob("*.png"))
    for png in real:
        (root / png.name).write_bytes(png.read_bytes())
    data = real[0].read_bytes()
    (root / "00000001_001.png").write_bytes(data[: len(data) // 2])  # labelled, truncated
    (root / "99999999_000.png").write_bytes(data)  # no label row
    (root / "notes.txt").write_text("skipped by --path_match_regex")
    return root


def _labels_in_bigquery(bigquery: BigQueryHandle, bucket: str, tmp_path: Path) -> str:
    """The CSV's label rows, as DuckDB reads them, loaded into BigQuery from a gs:// file."""
    with duckdb.connect() as con:
        labels = con.sql(DUCKDB_QUERY).to_arrow_table()
    lines = tmp_path / "labels.jsonl"
    lines.write_text("".join(json.dumps(row) + "\n" for row in labels.to_pylist()))
    source = upload(lines, f"{bucket}/labels/labels.jsonl")
    table = f"{bigquery.project}.{bigquery.dataset()}.nih_labels"
    config = bq.LoadJobConfig(
        schema=[
            bq.SchemaField("path", "STRING"),
            bq.SchemaField("findings", "STRING"),
            bq.SchemaField("age", "INT64"),
            bq.SchemaField("male", "BOOL"),
        ],
        source_format=bq.SourceFormat.NEWLINE_DELIMITED_JSON,
    )
    bigquery.client.load_table_from_uri(source, table, job_config=config).result()
    assert bigquery.client.get_table(table).num_rows == labels.num_rows == 201
    return table


def _images_args(prefix: str, out: str, *query: str) -> list[str]:
    return [
        "--input_prefix",
        f"{prefix}/",
        "--path_match_regex",
        r".*\.png",
        *query,
        "--output_image_shape",
        "64",
        "48",
        "--output_tfrecord_dir",
        f"{out}/tfrecords",
        "--output_dir",
        out,
        RUNNER,
    ]


def test_images_to_tfrecord_on_gcs_with_bigquery_labels_matches_duckdb(
    gcs: GcsHandle, bigquery: BigQueryHandle, images: Path, tmp_path: Path
) -> None:
    """Images on gs://, the label query in BigQuery (client), outputs on gs://: same as local.

    The TFRecords (features typed from each backend's result schema), the
    features.json, the manifest counts and the quarantine are identical, and
    the labels table in BigQuery is the local DuckDB one.
    """
    local = tmp_path / "local"
    local_code = images_to_tfrecord.main(
        _images_args(str(images), str(local), "--query", DUCKDB_QUERY, "--output_table", "labels")
    )
    bucket = gcs.bucket()
    table = _labels_in_bigquery(bigquery, bucket, tmp_path)
    for path in images.iterdir():
        upload(path, f"{bucket}/images/{path.name}")
    out = f"{bucket}/out"
    query = BIGQUERY_QUERY.format(table=f"`{table}`")
    output_table = f"{bigquery.project}.{bigquery.dataset()}.labels"
    code = images_to_tfrecord.main(
        _images_args(
            f"{bucket}/images",
            out,
            "--query",
            query,
            "--query_backend",
            "bigquery",
            "--project",
            bigquery.project,
            "--output_table",
            output_table,
            "--temp_location",
            f"{bucket}/tmp",
        )
    )
    assert code == local_code == 1  # the truncated, unlabelled and label-only inputs
    assert tfrecords_by_folder(f"{out}/tfrecords") == tfrecords_by_folder(f"{local}/tfrecords")
    assert len(tfrecords_by_folder(f"{out}/tfrecords")[""]) == 2
    assert read_bytes(f"{out}/tfrecords/features.json") == read_bytes(
        f"{local}/tfrecords/features.json"
    )
    _assert_same_run(out, str(local), {f"{bucket}/images": "IN", str(images): "IN"})
    _assert_same_table(
        bigquery_table(bigquery.client, output_table),
        duckdb_table(local / "tables.duckdb", "labels"),
    )
    # The data card, from the BigQuery table and the gs:// TFRecords as a local run's is, and
    # the records it shows: the sources' pixel sizes and the input folder's totals.
    card = read_bytes(f"{out}/_card.html").decode()
    assert output_table.replace(".", ":", 1) in card
    assert (
        card.count("data:image/jpeg")
        == (local / "_card.html").read_text().count("data:image/jpeg")
        == 2
    )
    cloud_parameters = json.loads(read_bytes(f"{out}/_manifest.json"))["parameters"]
    local_parameters = json.loads((local / "_manifest.json").read_text())["parameters"]
    assert cloud_parameters["source_pixel_sizes"] == local_parameters["source_pixel_sizes"]
    assert [(f["uri"], f["files"], f["bytes"]) for f in cloud_parameters["inputs"]] == [
        (f"{bucket}/images/", 5, sum(p.stat().st_size for p in images.iterdir()))
    ]
