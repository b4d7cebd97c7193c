"""The dataset contract: targets versus metadata, and keys and paths from CSV columns.

A scratch chest X-ray data set, declared in a package outside the repository
(as `tests/test_plugins.py` does), reads NIH-style label rows: the image's
file name in ``Image Index``, the view (a key field, hence the TFRecord
folder) in ``View Position``, two target findings and three metadata columns
(age, sex, and a ``bool`` that `evaluate` would otherwise score). Its layout
writes no row parser. It is generated, ingested, inferred with a model that
has only the two target outputs, and evaluated, all through the generated
entry points.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import attrs
import duckdb
import numpy as np
import pytest
from PIL import Image

from datathon_etl.codegen.render import render_dataset
from datathon_etl.framework.schema import Dataset, SchemaError, column, read_dataset
from tests.scratch_package import generate, run_clean, write_package

DECLARATION = '''
"""A scratch NIH-style data set: ``<patient>_<follow-up>.png`` in one folder."""

from __future__ import annotations

import enum

import attrs

from datathon_etl.framework.schema import Dataset, UnknownCodeError, column


class View(enum.IntEnum):
    PA = 0
    AP = 1

    @classmethod
    def from_source(cls, text: str) -> View:
        return cls[text.upper()]  # an unknown code is a KeyError


class Sex(enum.IntEnum):
    MALE = 0
    FEMALE = 1

    @classmethod
    def from_source(cls, text: str) -> Sex:
        codes = {"M": cls.MALE, "F": cls.FEMALE}
        if text not in codes:
            raise UnknownCodeError(f"unknown sex {text!r}")
        return codes[text]


@attrs.frozen
class Key:
    patient: int = column("Patient number.")
    follow_up: int = column("Follow-up number.")
    view: View = column("View position.", source="View Position", default=View.PA)


@attrs.frozen
class Labels:
    effusion: bool = column("Whether an effusion is seen.", source="Effusion")
    mass: bool = column("Whether a mass is seen.", source="Mass")
    age: int = column("Patient age in years.", source="Patient Age", target=False)
    sex: Sex = column("Patient sex.", source="Patient Gender", target=False)
    portable: bool = column("Taken with a portable unit.", source="Portable", target=False)


DATASET = Dataset(
    name="scratch_cxr",
    description="A scratch NIH-style data set declared outside datathon-etl.",
    key=Key,
    labels=Labels,
    layout="scratch_cxr.layout",
    patient="patient",
    path_source="Image Index",
)
'''

LAYOUT = '''
"""Paths ``<8 digits>_<3 digits>.png`` <-> keys; one TFRecord folder per view."""

from __future__ import annotations

import re

from scratch_cxr.declaration import Key, View

PARTITIONS = tuple(v.name.lower() for v in View)
_PATH = re.compile(r"(?P<patient>\\d{8})_(?P<follow_up>\\d{3})\\.png")


def format_path(key: Key) -> str:
    return f"{key.patient:08d}_{key.follow_up:03d}.png"


def parse_path(path: str) -> Key:
    match = _PATH.search(path)
    if match is None or not path.endswith(match.group(0)):
        raise ValueError(f"scratch_cxr: {path}: not <8 digits>_<3 digits>.png")
    return Key(patient=int(match["patient"]), follow_up=int(match["follow_up"]))


def partition(key: Key) -> str:
    return key.view.name.lower()
'''

HEADER = ("Image Index", "Effusion", "Mass", "Patient Age", "Patient Gender", "View Position")
ROWS = [
    ("00000001_000.png", "1", "0", "58", "M", "PA", "0"),
    ("00000001_001.png", "0", "1", "58", "M", "AP", "1"),
    ("00000002_000.png", "1", "1", "81", "F", "PA", "0"),
    ("00000003_000.png", "0", "0", "30", "F", "AP", "1"),
    ("00000004_000.png", "1", "0", "44", "F", "LL", "0"),  # unknown view code
    ("", "1", "0", "44", "F", "PA", "0"),  # no image path
]
SIZE = 32


def _python_m(project: Path, module: str, *argv: str) -> tuple[int, str]:
    done = run_clean(
        [sys.executable, "-m", f"scratch_cxr.generated.scratch_cxr.{module}", *argv], project
    )
    return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the generated package's project folder, the ingestion's output folder)."""
    root = tmp_path_factory.mktemp("contract")
    project = write_package(root, "scratch_cxr", {"declaration": DECLARATION, "layout": LAYOUT})
    generate(project, "scratch_cxr")
    images = root / "images"
    images.mkdir()
    for number, row in enumerate(ROWS[:5]):
        pixels = np.full((40, 48), 40 * number, dtype=np.uint8)
        Image.fromarray(pixels, "L").save(images / row[0])
    labels = root / "Data_Entry.csv"
    with labels.open("w", newline="") as f:
        csv.writer(f).writerows([(*HEADER, "Portable"), *ROWS])
    out = root / "out"
    code, output = _python_m(
        project,
        "ingest",
        *("--input_prefix", f"{images}/", "--input_csv", str(labels)),
        *("--output_dir", str(out), "--output_tfrecord_dir", str(out / "tfrecords")),
        *("--output_image_shape", str(SIZE), str(SIZE), "--max_bad_fraction", "0.5"),
    )
    assert code == 0, output
    return project, out


def _table(database: Path, table: str, order: str = "path") -> list[dict[str, object]]:
    with duckdb.connect(str(database), read_only=True) as con:
        rows: list[dict[str, object]] = (
            con.sql(f"SELECT * FROM {table} ORDER BY {order}").to_arrow_table().to_pylist()
        )
    return rows


def test_keys_and_paths_come_from_declared_columns(ingested: tuple[Path, Path]) -> None:
    """``Image Index`` names the image, ``View Position`` its view and TFRecord folder."""
    _, out = ingested
    found = _table(out / "tables.duckdb", "scratch_cxr_labels")
    assert [(r["path"], r["view"], r["age"], r["sex"], r["portable"]) for r in found] == [
        ("00000001_000.png", 0, 58, 0, False),
        ("00000001_001.png", 1, 58, 0, True),
        ("00000002_000.png", 0, 81, 1, False),
        ("00000003_000.png", 1, 30, 1, True),
    ]
    import tensorflow as tf

    in_folders = {}
    for shard in (out / "tfrecords").glob("*/*.tfrecord"):
        for record in tf.data.TFRecordDataset(str(shard)):
            feature = tf.train.Example.FromString(record.numpy()).features.feature
            metadata = [feature[n].int64_list.value[0] for n in ("age", "sex", "portable")]
            in_folders[feature["path"].bytes_list.value[0].decode()] = (shard.parent.name, metadata)
    # Metadata rides in the TFRecords; the view from its CSV column picks the folder.
    assert in_folders == {
        "00000001_000.png": ("pa", [58, 0, 0]),
        "00000001_001.png": ("ap", [58, 0, 1]),
        "00000002_000.png": ("pa", [81, 1, 0]),
        "00000003_000.png": ("ap", [30, 1, 1]),
    }
    quarantined = [
        json.loads(line) for f in (out / "_quarantine").glob("*.jsonl") for line in f.open()
    ]
    reasons = sorted((q["reason"], q["path"]) for q in quarantined)
    assert reasons == [
        ("bad_label_row", ""),
        ("unknown_code", "00000004_000.png"),  # its row
        ("unknown_code", "00000004_000.png"),  # its image, for its row's reason
    ]
    stages = json.loads((out / "_manifest.json").read_text())["stages"]
    assert [stages[s]["written"] for s in ("images", "label_rows")] == [4, 4]
    details = " ".join(q["detail"] for q in quarantined)
    assert "Image Index: missing or blank" in details
    assert "View Position: unknown code 'LL'" in details


def test_a_csv_without_the_declared_path_column_is_refused(
    ingested: tuple[Path, Path], tmp_path: Path
) -> None:
    """A CSV with ``path`` but not ``Image Index``: one line naming the missing column."""
    project, _ = ingested
    labels = tmp_path / "labels.csv"
    labels.write_text("path," + ",".join(HEADER[1:]) + ",Portable\n")
    code, output = _python_m(
        project,
        "ingest",
        *("--input_prefix", f"{tmp_path}/", "--input_csv", str(labels)),
        *("--output_dir", str(tmp_path / "out")),
    )
    assert code == 2
    assert f"{labels} lacks the column(s) Image Index" in output


def _model(path: Path, outputs: int) -> Path:
    import keras

    keras.utils.set_random_seed(1)
    inputs = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inputs, keras.layers.Dense(outputs)(x)).save(path)
    return path


def test_infer_and_evaluate_use_the_targets_only(
    ingested: tuple[Path, Path], tmp_path: Path
) -> None:
    """A 2-output model for 2 targets and 3 metadata labels; only the targets are scored."""
    project, out = ingested
    tfrecords = str(out / "tfrecords" / "*" / "*.tfrecord")
    wide = _model(tmp_path / "wide.keras", outputs=5)
    code, output = _python_m(
        project,
        "infer",
        "--tfrecords",
        tfrecords,
        "--model",
        str(wide),
        "--output_dir",
        str(tmp_path / "wide"),
    )
    assert code == 2
    assert "the model outputs 5 values per image, but the dataset has 2 target labels" in output

    model = _model(tmp_path / "targets.keras", outputs=2)
    predicted = tmp_path / "predicted"
    code, output = _python_m(
        project,
        "infer",
        "--tfrecords",
        tfrecords,
        "--model",
        str(model),
        "--output_dir",
        str(predicted),
    )
    assert code == 0, output
    found = _table(predicted / "tables.duckdb", "scratch_cxr_predictions")
    assert [r["path"] for r in found] == [
        "00000001_000.png",
        "00000001_001.png",
        "00000002_000.png",
        "00000003_000.png",
    ]
    assert list(found[0]) == ["patient", "follow_up", "view", "path", "effusion", "mass"]

    code, output = _python_m(
        project,
        "evaluate",
        "--labels_db",
        str(out / "tables.duckdb"),
        "--submissions",
        str(predicted / "tables.duckdb"),
        "--bootstrap_samples",
        "10",
        "--min_positives",
        "1",
        "--output_table",
        f"{tmp_path / 'scores.duckdb'}:board",
    )
    assert code == 0, output
    board = _table(tmp_path / "scores.duckdb", "board", order="label")
    assert sorted({str(r["label"]) for r in board}) == ["None", "effusion", "mass"]


@attrs.frozen
class _Key:
    case: int = column("Case number.")


@attrs.frozen
class _Labels:
    fracture: bool = column("Whether a fracture is seen.")
    implant: bool = column("Whether an implant is seen.", target=False)
    age: float | None = column("Bone age in years.", target=False)


@attrs.frozen
class _MetadataOnly:
    age: float = column("Age.", target=False)


@attrs.frozen
class _KeyNotTarget:
    case: int = column("Case number.", target=False)


def test_metadata_labels_are_in_the_labels_table_only() -> None:
    """Labels table: every label; predictions, rows and evaluate: the targets."""
    ir = read_dataset(Dataset(name="toy", description="A toy.", key=_Key, labels=_Labels), "t")
    assert [c.name for c in ir.labels_table.columns] == [
        "case",
        "path",
        "fracture",
        "implant",
        "age",
    ]
    assert [c.name for c in ir.predictions_table.columns] == ["case", "path", "fracture"]
    assert [c.name for c in ir.features] == ["path", "case", "fracture", "implant", "age"]
    files = render_dataset(ir)
    declared = json.loads(files["dataset.json"])
    assert [codes["column"] for codes in declared["evaluation"]["labels"]] == ["fracture"]
    assert declared["rows"]["targets"] == ["fracture"]
    assert declared["rows"]["labels"] == ["fracture", "implant", "age"]
    dictionary = " ".join(files["DATA_DICTIONARY.md"].split())
    assert "are the target labels: `fracture`." in dictionary
    assert "never a model output: `implant`, `age`." in dictionary


@pytest.mark.parametrize(
    ("key", "labels", "message"),
    [
        (_Key, _MetadataOnly, "toy: no label is a target"),
        (_KeyNotTarget, _Labels, "toy: _KeyNotTarget.case: key fields are never targets"),
    ],
)
def test_a_declaration_without_targets_or_with_a_metadata_key_is_refused(
    key: type, labels: type, message: str
) -> None:
    with pytest.raises(SchemaError, match=message):
        read_dataset(Dataset(name="toy", description="A toy.", key=key, labels=labels), "t")


def test_a_layout_missing_a_function_is_a_codegen_error(tmp_path: Path) -> None:
    """The layout's missing pieces are named by codegen, in one line, not met mid-run."""
    partial = LAYOUT.split("\n\ndef partition")[0].replace("PARTITIONS = ", "_VIEWS = ")
    project = write_package(
        tmp_path, "scratch_cxr", {"declaration": DECLARATION, "layout": partial}
    )
    script = Path(sys.executable).parent / "datathon-etl"
    done = run_clean([str(script), "codegen", "scratch_cxr.declaration", "--out", "out"], project)
    assert done.returncode == 2
    assert done.stderr == (
        "datathon-etl codegen: scratch_cxr.layout: the layout module lacks partition, PARTITIONS\n"
    )
