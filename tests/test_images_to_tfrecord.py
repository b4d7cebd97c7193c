"""images-to-tfrecord on real NIH chest X-rays and their real label rows."""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
import tensorflow as tf
import webdataset

from datathon_etl.framework.images.formats import ImageFormat, tree_path
from datathon_etl.framework.manifest import Manifest
from datathon_etl.framework.pipelines.images_to_tfrecord import main
from datathon_etl.framework.quarantine import Quarantined, Reason
from datathon_etl.framework.tfrecords.dataset import load_folder

# Hugging Face's datasets (`import datasets` finds the project's datasets/ folder for mypy).
hf_datasets: Any = importlib.import_module("datasets")

DATA = Path(__file__).parent / "data"
CSV = DATA / "labels" / "nih_sample_rows.csv"
QUERY = (
    'SELECT "Image Index" AS path, "Finding Labels" AS findings, "Patient Age" AS age, '
    f"\"Patient Gender\" = 'M' AS male FROM read_csv('{CSV}')"
)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real images, plus bad and unlabelled files beside them."""
    root = tmp_path_factory.mktemp("images")
    for png in (DATA / "images").glob("*.png"):
        shutil.copy(png, root / png.name)
    real = (DATA / "images" / "00000001_000.png").read_bytes()
    (root / "00000001_001.png").write_bytes(real[: len(real) // 2])  # truncated, labelled
    (root / "00000001_002.png").write_bytes(b"")  # zero bytes, labelled
    (root / "00000002_000.png").write_bytes(b"not an image at all")  # labelled
    (root / "99999999_000.png").write_bytes(real)  # no label row
    (root / "notes.txt").write_text("skipped by --path_match_regex")
    return root


def _run(images: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "--input_prefix",
            f"{images}/",
            "--path_match_regex",
            r".*\.png",
            "--query",
            QUERY,
            "--output_image_shape",
            "64",
            "48",
            "--output_tfrecord_dir",
            str(out / "tfrecords"),
            "--output_dir",
            str(out),
            *extra,
        ]
    )


def _quarantine(out: Path) -> dict[str, Reason]:
    records = [
        Quarantined.from_json(line)
        for f in (out / "_quarantine").glob("*.jsonl")
        for line in f.read_text().splitlines()
    ]
    return {r.path: r.reason for r in records}


def test_real_images_and_labels_become_typed_tfrecords(images, tmp_path):
    """Labelled images are written with typed label columns; every input is accounted for."""
    assert _run(images, tmp_path, "--max_bad_fraction", "1") == 0
    manifest = Manifest.read(str(tmp_path / "_manifest.json"))
    manifest.check()
    assert manifest.stages["images"].input == 7
    assert manifest.stages["images"].skipped == 1
    assert manifest.stages["images"].written == 2
    assert manifest.stages["label_rows"].input == 201
    assert manifest.stages["label_rows"].written == 2
    assert sum(manifest.parameters["tfrecord_shards"].values()) == 2

    spec = json.loads((tmp_path / "tfrecords" / "features.json").read_text())["features"]
    assert spec["age"]["kind"] == "int64_list"
    assert spec["findings"]["text"] is True
    assert spec["male"]["boolean"] is True
    features = {
        "jpg_bytes": tf.io.FixedLenFeature([], tf.string),
        "path": tf.io.FixedLenFeature([], tf.string),
        "findings": tf.io.RaggedFeature(tf.string),
        "age": tf.io.RaggedFeature(tf.int64),
        "male": tf.io.RaggedFeature(tf.int64),
    }
    shards = sorted(str(p) for p in (tmp_path / "tfrecords").glob("data-*.tfrecord"))
    found = {}
    for record in tf.data.TFRecordDataset(shards):
        parsed = tf.io.parse_single_example(record, features)
        image = tf.io.decode_image(parsed["jpg_bytes"])
        assert tuple(image.shape) == (64, 48, 1)
        found[parsed["path"].numpy().decode()] = (
            parsed["findings"].numpy()[0].decode(),
            int(parsed["age"].numpy()[0]),
            bool(parsed["male"].numpy()[0]),
        )
    assert found == {
        "00000001_000.png": ("Cardiomegaly", 57, True),
        "00027426_000.png": ("No Finding", 53, True),
    }


def test_bad_and_unlabelled_images_are_quarantined_with_reasons(images, tmp_path):
    """Truncated, empty and non-image files and an unlabelled image each get a reason."""
    assert _run(images, tmp_path) == 1  # refusals over the default --max_bad_fraction 0
    reasons = _quarantine(tmp_path)
    assert reasons["00000001_001.png"] in {Reason.TRUNCATED_IMAGE, Reason.UNDECODABLE_IMAGE}
    assert reasons["00000001_002.png"] is Reason.EMPTY_FILE
    assert reasons["00000002_000.png"] is Reason.NOT_AN_IMAGE
    assert reasons["99999999_000.png"] is Reason.IMAGE_WITHOUT_LABELS
    assert reasons["00000003_000.png"] is Reason.LABELS_WITHOUT_IMAGE


def test_full_uris_in_the_path_column_join_too(images, tmp_path):
    """A label path given as the image's full location joins like a relative one."""
    query = QUERY.replace('"Image Index" AS path', f"'{images}/' || \"Image Index\" AS path")
    args = ["--query", query, "--max_bad_fraction", "1"]
    assert _run(images, tmp_path, *args) == 0
    assert Manifest.read(str(tmp_path / "_manifest.json")).stages["images"].written == 2


def test_duplicate_label_rows_never_multiply_examples(images, tmp_path):
    """Two conflicting rows for one image quarantine both rows and the image."""
    query = f"{QUERY} UNION ALL SELECT '00000001_000.png', 'Edema', 57, true"
    assert _run(images, tmp_path, "--query", query, "--max_bad_fraction", "1") == 0
    manifest = Manifest.read(str(tmp_path / "_manifest.json"))
    assert manifest.stages["images"].written == 1
    assert manifest.stages["label_rows"].quarantined[Reason.DUPLICATE_LABEL_ROW] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--query", "SELECT 1 AS x"], "'path' column"),
        (["--query", "SELEC nonsense"], "--query failed"),
        (["--input_prefix", "/nonexistent/"], "holds no file"),
        (["--path_match_regex", "("], "--path_match_regex"),
        (["--output_channel", "1"], "did you mean --output_channels?"),
        (
            [
                "--query",
                QUERY.replace(" AS male", " AS male, 'x'::BLOB AS raw"),
                "--output_webdataset_dir",
                "wds",
            ],
            "--output_webdataset_dir: column(s) raw hold bytes",
        ),
    ],
)
def test_usage_errors_stop_before_the_pipeline(images, tmp_path, capsys, args, message):
    """Bad queries, inputs and flags exit 2 with a one-line reason and write nothing."""
    assert _run(images, tmp_path / "out", *args) == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1
    assert message in stderr
    assert not (tmp_path / "out").exists()


def test_a_malformed_flag_value_is_one_line(images, tmp_path, capsys):
    """A value outside a flag's choices exits 2 with argparse's message, in one line."""
    assert _run(images, tmp_path / "out", "--output_channels", "2") == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1
    assert "--output_channels: invalid choice: 2" in stderr
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real PNG and a real image saved as JPEG, each with a label row in the CSV."""
    from PIL import Image

    root = tmp_path_factory.mktemp("mixed")
    shutil.copy(DATA / "images" / "00000001_000.png", root / "00000001_000.png")
    with Image.open(DATA / "images" / "00027426_000.png") as image:
        image.convert("L").save(root / "00027426_000.jpg", quality=90)
    return root


MIXED_QUERY = QUERY.replace(
    '"Image Index" AS path',
    "replace(\"Image Index\", '00027426_000.png', '00027426_000.jpg') AS path",
)


def _run_mixed(mixed: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "--input_prefix",
            f"{mixed}/",
            f"--query={MIXED_QUERY}",
            "--output_image_shape",
            "32",
            "32",
            "1",
            "--output_tfrecord_dir",
            str(out / "tfrecords"),
            "--output_dir",
            str(out),
            "--max_bad_fraction",
            "1",
            *extra,
        ]
    )


def _written(out: Path, feature: str) -> dict[str, bytes]:
    shards = sorted(str(p) for p in (out / "tfrecords").glob("data-*.tfrecord"))
    spec = {
        feature: tf.io.FixedLenFeature([], tf.string),
        "path": tf.io.FixedLenFeature([], tf.string),
    }
    return {
        parsed["path"].numpy().decode(): parsed[feature].numpy()
        for parsed in (
            tf.io.parse_single_example(record, spec) for record in tf.data.TFRecordDataset(shards)
        )
    }


@pytest.mark.parametrize(
    ("image_format", "kept", "refused", "magic"),
    [
        ("jpg", "00027426_000.jpg", "00000001_000.png", b"\xff\xd8\xff"),
        ("png", "00000001_000.png", "00027426_000.jpg", b"\x89PNG"),
    ],
)
def test_image_format_checks_the_bytes_and_names_the_feature(
    mixed, tmp_path, image_format, kept, refused, magic
):
    """--image_format: images in it are written in it as <format>_bytes; others quarantined."""
    assert _run_mixed(mixed, tmp_path, "--image_format", image_format) == 0
    feature = f"{image_format}_bytes"
    written = _written(tmp_path, feature)
    assert list(written) == [kept]
    assert written[kept].startswith(magic)
    assert tuple(tf.io.decode_image(written[kept]).shape) == (32, 32, 1)
    assert _quarantine(tmp_path)[refused] is Reason.WRONG_IMAGE_FORMAT
    features = json.loads((tmp_path / "tfrecords" / "features.json").read_text())["features"]
    assert feature in features


def test_label_rows_of_images_skipped_by_the_regex_are_skipped(mixed, tmp_path):
    r"""Rows of the PNGs that --path_match_regex '.*\.jpg' leaves out: skipped, exit 0."""
    code = _run_mixed(mixed, tmp_path, "--path_match_regex=.*\\.jpg", "--max_bad_fraction", "0")
    assert code == 0
    manifest = Manifest.read(str(tmp_path / "_manifest.json"))
    manifest.check()
    rows = manifest.stages["label_rows"]
    assert (rows.input, rows.written, rows.skipped, rows.quarantined_total) == (201, 1, 200, 0)
    images = manifest.stages["images"]
    assert (images.input, images.written, images.skipped) == (2, 1, 1)


def test_output_dir_defaults_to_the_tfrecord_folder(mixed, tmp_path, capsys):
    """Without --output_dir (the original had none) the records go with the TFRecords, said."""
    code = main(
        [
            "--input_prefix",
            f"{mixed}/",
            "--path_match_regex",
            r".*\.jpg",
            "--query",
            MIXED_QUERY,
            "--output_tfrecord_dir",
            str(tmp_path / "tfrecords"),
        ]
    )
    assert code == 0
    Manifest.read(str(tmp_path / "tfrecords" / "_manifest.json")).check()
    assert (tmp_path / "tfrecords" / "_quarantine").is_dir()
    out = capsys.readouterr().out
    assert f"no --output_dir: manifest and quarantine go to {tmp_path}/tfrecords" in out


def test_webdataset_parquet_and_table_hold_the_tfrecords_records(images, tmp_path):
    """The same images and typed labels, read back by webdataset, datasets, pyarrow, DuckDB."""
    code = _run(
        images,
        tmp_path,
        "--max_bad_fraction",
        "1",
        "--output_webdataset_dir",
        str(tmp_path / "wds"),
        "--output_parquet_dir",
        str(tmp_path / "parquet"),
        "--output_table",
        "labels",
    )
    assert code == 0
    features = {
        "jpg_bytes": tf.io.FixedLenFeature([], tf.string),
        "path": tf.io.FixedLenFeature([], tf.string),
        "findings": tf.io.RaggedFeature(tf.string),
        "age": tf.io.RaggedFeature(tf.int64),
        "male": tf.io.RaggedFeature(tf.int64),
    }
    expected = {}
    for record in tf.data.TFRecordDataset(sorted(map(str, tmp_path.glob("tfrecords/*.tfrecord")))):
        parsed = tf.io.parse_single_example(record, features)
        path = parsed["path"].numpy().decode()
        labels = {
            "path": path,
            "findings": parsed["findings"].numpy()[0].decode(),
            "age": int(parsed["age"].numpy()[0]),
            "male": bool(parsed["male"].numpy()[0]),
        }
        expected[path] = (parsed["jpg_bytes"].numpy(), labels)
    assert len(expected) == 2

    tars = sorted(map(str, tmp_path.glob("wds/data-*-of-*.tar")))
    samples = webdataset.WebDataset(tars, shardshuffle=False, empty_check=False)
    found = {}
    for s in samples:
        labels = json.loads(s["json"])
        assert s["__key__"] == labels["path"].removesuffix(".png")
        found[labels["path"]] = (s["jpg"], labels)
    assert found == expected

    parquet = sorted(map(str, tmp_path.glob("parquet/data-*-of-*.parquet")))
    rows = pq.read_table(parquet).to_pylist()
    assert {r["path"]: (r.pop("jpg_bytes")["bytes"], r) for r in rows} == expected
    loaded = hf_datasets.load_dataset("parquet", data_files=parquet, split="train")
    assert loaded.features["jpg_bytes"] == hf_datasets.Image()
    assert (loaded.features["age"], loaded.features["male"]) == (
        hf_datasets.Value("int64"),
        hf_datasets.Value("bool"),
    )
    assert {r["path"]: r["jpg_bytes"].size for r in loaded} == dict.fromkeys(expected, (48, 64))
    with duckdb.connect(str(tmp_path / "tables.duckdb"), read_only=True) as db:
        table = db.sql("SELECT * FROM labels").to_arrow_table()
    assert {r["path"]: r for r in table.to_pylist()} == {p: e[1] for p, e in expected.items()}
    assert table.column_names == ["path", "findings", "age", "male"]

    manifest = Manifest.read(str(tmp_path / "_manifest.json"))
    for parameter, folder, shards in (
        ("webdataset_shards", "wds", tars),
        ("parquet_shards", "parquet", parquet),
    ):
        listed = manifest.parameters[parameter]
        assert sorted(f"{tmp_path}/{folder}/{name}" for name in listed) == shards
        assert sum(listed.values()) == 2


def test_one_reader_gives_scalars_and_keeps_nulls(images, tmp_path):
    """load_folder reads features.json: a column without nulls is a scalar, one with is ragged."""
    query = QUERY.replace(
        " AS male", ' AS male, CASE WHEN "Patient Age" > 55 THEN "Patient Age" END AS over_55'
    )
    assert _run(images, tmp_path, "--query", query, "--max_bad_fraction", "1") == 0
    found = {}
    for example in load_folder(str(tmp_path / "tfrecords")):
        assert example["jpg_bytes"].shape == (64, 48, 1)
        assert example["age"].shape == example["male"].shape == example["findings"].shape == ()
        found[example["path"].numpy().decode()] = (
            int(example["age"]),
            bool(example["male"]),
            example["over_55"].numpy().tolist(),
        )
    assert found == {"00000001_000.png": (57, True, [57]), "00027426_000.png": (53, True, [])}


@pytest.fixture(scope="module")
def same_stems(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``a.png`` and ``a.jpg`` side by side (two real images), and a real DICOM ``b.dcm``."""
    from PIL import Image

    root = tmp_path_factory.mktemp("same_stems")
    shutil.copy(DATA / "images" / "00000001_000.png", root / "a.png")
    with Image.open(DATA / "images" / "00027426_000.png") as image:
        image.convert("L").save(root / "a.jpg", quality=90)
    shutil.copy(DATA / "dicom" / "CT_small.dcm", root / "b.dcm")
    return root


STEMS_QUERY = "SELECT * FROM (VALUES ('a.png', 1), ('a.jpg', 2), ('b.dcm', 3)) AS t(path, label)"


def _run_tree(images: Path, out: Path, *extra: str, query: str = STEMS_QUERY) -> int:
    argv = ["--input_prefix", f"{images}/", "--query", query, "--output_image_shape", "32", "32"]
    argv += ["--output_tfrecord_dir", str(out / "tfrecords"), "--output_dir", str(out)]
    return main([*argv, "--output_jpg_dir", str(out / "jpg"), *extra])


@pytest.mark.parametrize(
    ("output_format", "names"),
    [
        ("jpeg", {"a.png": "a.png.jpg", "a.jpg": "a.jpg", "b.dcm": "b.jpg"}),
        ("png", {"a.png": "a.png", "a.jpg": "a.jpg.png", "b.dcm": "b.png"}),
    ],
)
def test_the_image_tree_names_files_for_their_format_without_collisions(
    same_stems, tmp_path, output_format, names
):
    """--output_jpg_dir: a.png and a.jpg stay two files, each the TFRecords' bytes of its image."""
    assert _run_tree(same_stems, tmp_path, "--output_image_format", output_format) == 0
    feature, magic = {"jpeg": ("jpg_bytes", b"\xff\xd8\xff"), "png": ("png_bytes", b"\x89PNG")}[
        output_format
    ]
    written = _written(tmp_path, feature)
    assert set(written) == set(names)
    tree = tmp_path / "jpg"
    files = {str(p.relative_to(tree)): p.read_bytes() for p in tree.rglob("*") if p.is_file()}
    assert files == {names[path]: data for path, data in written.items()}
    assert all(data.startswith(magic) for data in files.values())
    manifest = Manifest.read(str(tmp_path / "_manifest.json"))
    assert manifest.parameters["output_jpg_dir"] == str(tree)


def test_label_paths_that_would_share_a_file_are_refused_before_the_run(
    same_stems, tmp_path, capsys
):
    """b.dcm and b.jpg would both be b.jpg: one line naming both, exit 2, nothing written."""
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(same_stems / "a.jpg", images / "b.jpg")
    shutil.copy(same_stems / "b.dcm", images / "b.dcm")
    query = "SELECT * FROM (VALUES ('b.dcm', 1), ('b.jpg', 2)) AS t(path, label)"
    assert _run_tree(images, tmp_path / "out", query=query) == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1
    assert "--output_jpg_dir: the images 'b.dcm' and 'b.jpg' would both be written as 'b.jpg'" in (
        stderr
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("path", "image_format", "expected"),
    [
        ("p1/a.jpg", ImageFormat.JPEG, "p1/a.jpg"),
        ("p1/a.JPEG", ImageFormat.JPEG, "p1/a.JPEG"),
        ("p1/a.png", ImageFormat.JPEG, "p1/a.png.jpg"),
        ("p1/a.png", ImageFormat.PNG, "p1/a.png"),
        ("p1/a.jpg", ImageFormat.PNG, "p1/a.jpg.png"),
        ("p1/b.dcm", ImageFormat.JPEG, "p1/b.jpg"),
        ("p1/b.dcm", ImageFormat.PNG, "p1/b.png"),
        ("v1.2/IM0001", ImageFormat.JPEG, "v1.2/IM0001.jpg"),
    ],
)
def test_tree_path(path, image_format, expected):
    """The image tree's naming rule, case by case."""
    assert tree_path(path, image_format) == expected
