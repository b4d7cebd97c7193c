r"""The original pipelines' README commands, as written, against the GCS and BigQuery emulators.

The commands are read from the original README itself
(``tests/data/seed/pipelines-for-healthcare-datasets.md``) and only the
program names are changed (``python2 generic_imaging/images_to_tfrecord.py``
-> ``datathon-etl images-to-tfrecord``, ...). They name ``gs://bucket/...``,
the BigQuery table ``project:bigquery_dataset.bigquery_table`` and
``--runner DataflowRunner``: the bucket ``bucket`` and the dataset
``project.bigquery_dataset`` are made on the emulators; each command is
first built as a Dataflow job with ``--dry_run=True`` added, then run as
written on the local runner (``--runner FnApiRunner`` instead), and its
outputs are checked: TFRecords parse with the original feature names, the
BigQuery tables have the original schemas.

The README's code blocks are split as a shell would split them, except that
a line break is a space: three of its lines lack the ``\\`` that continues
a command (every reader fixes that).
"""

from __future__ import annotations

import gzip
import io
import json
import re
import shlex
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import pytest
import tensorflow as tf
from google.cloud import bigquery as bq
from PIL import Image

from datathon_etl.datasets.mimic_cxr.synthetic import write_sample
from datathon_etl.framework.cli import main as cli
from datathon_etl.framework.manifest import Manifest
from datathon_etl.framework.pipelines import images_to_tfrecord
from datathon_etl.generated.mimic_cxr import rows
from datathon_etl.generated.mimic_cxr.infer import main as infer
from datathon_etl.generated.mimic_cxr.ingest import main as ingest
from tests.emulators import BigQueryHandle, FakeGcsServer, GcsHandle
from tests.pipeline_outputs import read_bytes, read_tree, upload

SEED = Path(__file__).parent / "data" / "seed"
README = SEED / "pipelines-for-healthcare-datasets.md"
IMAGES = Path(__file__).parent / "data" / "images"

PROGRAMS: dict[str, list[str]] = {
    "python2 generic_imaging/images_to_tfrecord.py": ["images-to-tfrecord"],
    "python2 generic_imaging/decompress_gcs.py": ["decompress"],
    "python2 generic_imaging/untar_gcs.py": ["untar"],
    "python2 mimic_cxr/prepare_mimic_cxr.py": ["mimic_cxr", "ingest"],
    "python2 mimic_cxr/mimic_cxr_inference_to_bigquery.py": ["mimic_cxr", "infer"],
}
"""The original program -> our command (``datathon-etl`` + these words)."""

Main = Callable[[Sequence[str] | None], int]
MAINS: dict[str, Main] = {
    "images-to-tfrecord": images_to_tfrecord.main,
    "mimic_cxr ingest": ingest,
    "mimic_cxr infer": infer,
}
TABLE = "project:bigquery_dataset.bigquery_table"


def readme_commands() -> list[tuple[list[str], list[str]]]:
    """(our command words, arguments) of every command in the original README's code blocks."""
    found = []
    for block in re.findall(r"```\n(.*?)```", README.read_text(), re.DOTALL):
        words = shlex.split(block.replace("\\\n", "\n"))
        found.append((PROGRAMS[" ".join(words[:2])], words[2:]))
    return found


def _command(name: str) -> list[str]:
    """The arguments of the README's one full example of ``name``."""
    [argv] = [argv for words, argv in readme_commands() if " ".join(words) == name and argv[1:]]
    return argv


def _local(argv: list[str]) -> list[str]:
    """The command as written, run on the local runner instead of Dataflow."""
    index = argv.index("--runner")
    assert argv[index + 1] == "DataflowRunner"
    return [*argv[:index], "--runner", "FnApiRunner", *argv[index + 2 :]]


def _dry_run(main: Main, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, "--dry_run=True"]) == 0, capsys.readouterr().err
    assert "the Dataflow job was built and checked" in capsys.readouterr().out


def test_the_readme_names_each_program_we_replace():
    """Eight commands: each program's --help and the three full examples."""
    commands = readme_commands()
    assert [" ".join(words) for words, argv in commands if argv == ["--help"]] == [
        "images-to-tfrecord",
        "decompress",
        "untar",
        "mimic_cxr ingest",
        "mimic_cxr infer",
    ]
    assert len(commands) == 8


@pytest.mark.parametrize(
    "words", [words for words, argv in readme_commands() if argv == ["--help"]], ids=" ".join
)
def test_each_help_command_works(words, capsys):
    """`python2 <program> --help`, renamed, prints the command's usage and exits 0."""
    with pytest.raises(SystemExit) as exit_:
        cli([*words, "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: datathon-etl {' '.join(words)}")


# --- The emulated cloud the README names --------------------------------------


@pytest.fixture
def bucket(gcs: GcsHandle, fake_gcs_server: FakeGcsServer) -> str:
    """``gs://bucket``, made once on the fake GCS (a re-run of a test finds it)."""
    request = urllib.request.Request(
        f"{fake_gcs_server.endpoint}/storage/v1/b",
        data=json.dumps({"name": "bucket"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
    except urllib.error.HTTPError as e:
        if e.code != 409:  # it exists already
            raise
    return "gs://bucket"


@pytest.fixture
def dataset(bigquery: BigQueryHandle, bucket: str) -> bq.Client:
    """The BigQuery dataset ``project.bigquery_dataset``; a client for project ``project``."""
    client = bq.Client(project="project")
    client.create_dataset("project.bigquery_dataset", exists_ok=True)
    return client


def _bigquery_schema(client: bq.Client, table: str) -> list[dict[str, str]]:
    fields = client.get_table(table.replace(":", ".")).schema
    return [{"name": f.name, "type": f.field_type} for f in fields]


def _original_schema(name: str) -> list[dict[str, str]]:
    fields = json.loads((SEED / name).read_text())["fields"]
    return [{"name": f["name"], "type": f["type"]} for f in fields]


# --- Generic imaging: images_to_tfrecord.py ------------------------------------


def test_images_to_tfrecord_as_written(
    dataset: bq.Client, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r"""JPEGs under gs://bucket/jpgs/ and the BigQuery query -> TFRecords with jpg_bytes.

    The query's rows name the images by their gs:// location; a PNG beside
    them and its label row are skipped by --path_match_regex='.*\\.jpg'.
    """
    labels = {"00000001_000.jpg": 1, "00027426_000.jpg": 0}
    for name in labels:
        with Image.open(IMAGES / name.replace(".jpg", ".png")) as image:
            image.convert("L").save(tmp_path / name, quality=90)
        upload(tmp_path / name, f"{bucket}/jpgs/{name}")
    upload(IMAGES / "00000001_000.png", f"{bucket}/jpgs/00000001_000.png")
    table = "project.bigquery_dataset.bigquery_table"
    dataset.delete_table(table, not_found_ok=True)
    rows_ = [{"path": f"{bucket}/jpgs/{name}", "label_1": value} for name, value in labels.items()]
    rows_.append({"path": f"{bucket}/jpgs/00000001_000.png", "label_1": 1})
    lines = tmp_path / "labels.jsonl"
    lines.write_text("".join(json.dumps(row) + "\n" for row in rows_))
    config = bq.LoadJobConfig(
        schema=[bq.SchemaField("path", "STRING"), bq.SchemaField("label_1", "INT64")],
        source_format=bq.SourceFormat.NEWLINE_DELIMITED_JSON,
    )
    source = upload(lines, f"{bucket}/labels/labels.jsonl")
    dataset.load_table_from_uri(source, table, job_config=config).result()
    argv = _command("images-to-tfrecord")

    _dry_run(images_to_tfrecord.main, argv, capsys)
    assert images_to_tfrecord.main(_local(argv)) == 0, capsys.readouterr().err

    out = "gs://bucket/resized_tfrecords"
    assert "no --output_dir: manifest and quarantine go to gs://bucket/resized_tfrecords" in (
        capsys.readouterr().out
    )
    manifest = Manifest.read(f"{out}/_manifest.json")
    manifest.check()
    assert manifest.stages["images"].skipped == manifest.stages["label_rows"].skipped == 1
    spec = {
        "jpg_bytes": tf.io.FixedLenFeature([], tf.string),
        "path": tf.io.FixedLenFeature([], tf.string),
        "label_1": tf.io.FixedLenFeature([], tf.int64),
    }
    found = {}
    for name, data in read_tree(out).items():
        if name.endswith(".tfrecord"):
            for record in tf.data.TFRecordDataset([tf.constant(_records_file(tmp_path, data))]):
                example = tf.io.parse_single_example(record, spec)
                image = tf.io.decode_jpeg(example["jpg_bytes"])
                assert tuple(image.shape) == (320, 320, 1)
                found[example["path"].numpy().decode()] = int(example["label_1"].numpy())
    assert found == labels  # path: relative to the prefix, as the join keys it
    # The README's query lists label_1 twice; the second comes back renamed (label_1_1).
    features = json.loads(read_bytes(f"{out}/features.json"))["features"]
    assert {"jpg_bytes", "path", "label_1"} <= set(features)


def _records_file(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / f"shard-{len(list(tmp_path.glob('shard-*')))}.tfrecord"
    path.write_bytes(data)
    return str(path)


# --- MIMIC-CXR: prepare_mimic_cxr.py and mimic_cxr_inference_to_bigquery.py -----


def _split_tars(sample_dir: Path, folder: str) -> dict[str, bytes]:
    """The sample's members re-packed as the release's ``train_p10.tar`` and ``valid_p10.tar``."""
    members: dict[str, list[tuple[tarfile.TarInfo, bytes]]] = {"train": [], "valid": []}
    for tar_path in sorted(sample_dir.glob("*.tar")):
        with tarfile.open(tar_path) as tar:
            for info in tar.getmembers():
                data = tar.extractfile(info)
                assert data is not None
                members[info.name.split("/", 1)[0]].append((info, data.read()))
    tars = {}
    for split, entries in members.items():
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for info, content in entries:
                tar.addfile(info, io.BytesIO(content))
        tars[f"{folder}/{split}_p10.tar"] = buffer.getvalue()
    return tars


def test_mimic_cxr_ingest_and_inference_as_written(
    dataset: bq.Client, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """prepare_mimic_cxr.py's example, then the inference example, as written.

    The ingestion's TFRecords parse with the original's features and its
    BigQuery table has the original labels schema; the predictions table
    has the original predictions schema.
    """
    sample = write_sample(tmp_path / "sample", images=6, full_size=0)
    for name, data in _split_tars(tmp_path / "sample", "mimic-cxr-raw").items():
        (tmp_path / "upload").write_bytes(data)
        upload(tmp_path / "upload", f"{bucket}/{name}")
    for csv in sample.csvs:
        upload(csv, f"{bucket}/mimic-cxr-raw/{csv.name}")
    argv = _command("mimic_cxr ingest")
    assert TABLE in argv
    # The README's placeholders name one table for everything: each command gets a new one.
    dataset.delete_table(TABLE.replace(":", "."), not_found_ok=True)

    _dry_run(ingest, argv, capsys)
    assert ingest(_local(argv)) == 0, capsys.readouterr().err

    processed = f"{bucket}/mimic-cxr-processed"
    tfrecords = f"{processed}/resized_tfrecord/train"
    assert f"no --output_dir: manifest and quarantine go to {tfrecords}" in (
        capsys.readouterr().out
    )
    Manifest.read(f"{tfrecords}/_manifest.json").check()
    jpgs = [name for name in read_tree(f"{processed}/resized_jpg/train") if name.endswith(".jpg")]
    assert jpgs
    assert all(name.startswith("train/p") for name in jpgs)
    shards = [
        data for name, data in read_tree(tfrecords).items() if name.endswith(".tfrecord") and data
    ]
    features = {
        "jpg_bytes": tf.io.FixedLenFeature([], tf.string),
        "path": tf.io.FixedLenFeature([], tf.string),
        "edema": tf.io.FixedLenFeature([], tf.int64),
    }
    paths = []
    for data in shards:
        for record in tf.data.TFRecordDataset([_records_file(tmp_path, data)]):
            example = tf.io.parse_single_example(record, features)
            assert tuple(tf.io.decode_jpeg(example["jpg_bytes"]).shape) == (320, 320, 1)
            paths.append(example["path"].numpy().decode())
    assert paths
    assert all(path.startswith("train/") for path in paths)
    assert _bigquery_schema(dataset, TABLE) == _original_schema(
        "mimic_cxr_bigquery_labels_schema.json"
    )

    # The README's flow goes on with the valid split (its paths end in /train).
    valid = [arg.replace("train", "valid") for arg in argv]
    assert ingest(_local(valid)) == 0, capsys.readouterr().err

    _model(tmp_path / "my_model.h5")
    upload(tmp_path / "my_model.h5", f"{bucket}/mimic-cxr-models/my_model.h5")
    argv = _command("mimic_cxr infer")
    dataset.delete_table(TABLE.replace(":", "."), not_found_ok=True)
    _dry_run(infer, argv, capsys)
    assert infer(_local(argv)) == 0, capsys.readouterr().err
    records = f"{bucket}/mimic-cxr-models/my_model.h5.infer"
    assert f"no --output_dir: manifest and quarantine go to {records}" in capsys.readouterr().out
    Manifest.read(f"{records}/_manifest.json").check()
    assert _bigquery_schema(dataset, TABLE) == _original_schema(
        "mimic_cxr_bigquery_predictions_schema.json"
    )
    predicted = dataset.list_rows(TABLE.replace(":", ".")).to_arrow()
    assert sorted(predicted.column("path").to_pylist()) == sorted(
        row[0] for row in _valid_rows(sample.csvs)
    )

    # evaluate (which the original lacked) names a labels table that is not there in one line.
    missing = [
        *("--predictions_table", TABLE, "--split", "valid", "--project", "project"),
        *("--labels_table", "project:bigquery_dataset.nope"),
    ]
    assert cli(["mimic_cxr", "evaluate", *missing]) == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1
    assert "--labels_table project:bigquery_dataset.nope" in stderr


def _valid_rows(csvs: Sequence[Path]) -> list[list[str]]:
    [valid] = [csv for csv in csvs if csv.name.startswith("valid")]
    lines = gzip.decompress(valid.read_bytes()).decode().splitlines()[1:]
    return [line.split(",") for line in lines]


def _model(path: Path) -> None:
    """A tiny untrained CNN in the original's .h5 format: 320x320x1 -> a logit per label."""
    keras.utils.set_random_seed(1)
    image = keras.Input((320, 320, 1))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3, strides=4)(image))
    keras.Model(image, keras.layers.Dense(len(rows.TARGET_COLUMNS))(pooled)).save(path)


def test_decompress_as_the_original_did(bucket: str, tmp_path: Path) -> None:
    """decompress_gcs.py's flags: --gcs_input_prefix, the .gz dropped beside each input."""
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(b"a,b\n1,2\n"))
    upload(tmp_path / "a.csv.gz", f"{bucket}/mimic-cxr-raw-gz/a.csv.gz")
    argv = [
        "decompress",
        "--gcs_input_prefix",
        f"{bucket}/mimic-cxr-raw-gz/",
        "--path_sub_pattern",
        r"\.gz$",
        "--path_sub_repl",
        "",
    ]
    assert cli(argv) == 0
    assert read_bytes(f"{bucket}/mimic-cxr-raw-gz/a.csv") == b"a,b\n1,2\n"
    Manifest.read(f"{bucket}/mimic-cxr-raw-gz.decompress/_manifest.json").check()
