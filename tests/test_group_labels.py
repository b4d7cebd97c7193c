"""Labels per patient: a group other than a study, declared outside the repository.

A scratch ward data set keeps its images at ``P<patient>/<image>.png``, a
per-image split table (``ward-split.csv``) and one label row per patient
(``ward-diagnoses.csv``). Its layout module follows `GroupLayout` with
``LABELS_PER = "patient"``; it is generated and ingested through the
generated entry point, and every image and row ends written or quarantined
with a detail naming the patient. Its rows are read as declared: the layout
parses paths and id cells (``row_key``), nothing else.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from PIL import Image

from tests.scratch_package import generate, run_clean, write_package

DECLARATION = '''
"""A scratch ward data set: two findings per patient, images in a folder per patient."""

from __future__ import annotations

import enum

import attrs

from datathon_etl.framework.schema import Dataset, UnknownCodeError, column


class Split(enum.IntEnum):
    TRAIN = 0
    TEST = 1

    @classmethod
    def from_source(cls, text: str) -> Split:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise UnknownCodeError(f"unknown split {text!r}") from None


@attrs.frozen
class Key:
    patient: int = column("Patient number.")
    image: str = column("The image's name in the patient's folder.")
    split: Split = column("The split, from the split table.")
    portable: bool | None = column("Taken with a portable unit, where the device table says.")


@attrs.frozen
class Labels:
    effusion: bool | None = column("An effusion in the patient's history.", source="Effusion")
    mass: bool | None = column("A mass in the patient's history.", source="Mass")


DATASET = Dataset(
    name="ward_cxr",
    description="A scratch data set labelled per patient.",
    key=Key,
    labels=Labels,
    layout="ward_cxr.layout",
    patient="patient",
    split="split",
)
'''

LAYOUT = '''
"""``P<patient>/<image>.png``; a split row per image, a label row per patient."""

from __future__ import annotations

import re

import attrs

from datathon_etl.framework.ingest.spec import ImageTable
from datathon_etl.framework.quarantine import Reason
from ward_cxr.declaration import Key, Labels, Split

LABELS_PER = "patient"
LABEL_KEY_COLUMNS = ("patient",)
LABEL_SOURCES = ("diagnoses",)
NO_LABELS = Labels(None, None)
PARTITIONS = ("train", "test")
_PATH = re.compile(r"(?:^|/)P(?P<patient>\\d+)/(?P<image>[a-z0-9]+)\\.png$")


@attrs.frozen
class ImagePath:
    patient: int
    image: str


@attrs.frozen
class SplitRow:
    image: str
    patient: int
    split: Split


@attrs.frozen
class DeviceRow:
    image: str
    patient: int
    portable: bool


def format_path(key: ImagePath | Key) -> str:
    return f"P{key.patient}/{key.image}.png"


def parse_path(path: str) -> ImagePath:
    match = _PATH.search(path)
    if match is None:
        raise ValueError(f"ward_cxr: {path}: not P<patient>/<image>.png")
    return ImagePath(int(match["patient"]), match["image"])


def row_key(row):
    patient = (row.get("patient") or "").strip()
    if not patient.isdigit():
        raise ValueError(f"ward_cxr: patient {patient!r} is not a number")
    if "image" in row:
        return format_path(ImagePath(int(patient), (row.get("image") or "").strip()))
    return f"P{int(patient)}"


TABLES = (
    ImageTable.declared("split", SplitRow, Reason.MISSING_SPLIT),
    ImageTable.declared("devices", DeviceRow, None),  # optional: most images have no row
)


def image_key(path: ImagePath, split: SplitRow, device: DeviceRow | None) -> Key:
    portable = device.portable if device is not None else None
    return Key(path.patient, path.image, split.split, portable)


def group_of(key: ImagePath | Key) -> str:
    return f"P{key.patient}"


def partition(key: Key) -> str:
    return key.split.name.lower()
'''

IMAGES = ("P1/a.png", "P1/b.png", "P2/a.png", "P2/b.png", "P3/a.png", "P4/a.png", "P6/a.png")
SPLITS = [  # P6/a.png has no split row
    ("a", "1", "train"),
    ("b", "1", "train"),
    ("a", "2", "train"),
    ("b", "2", "test"),  # patient 2 in two splits: reported, not dropped
    ("a", "3", "test"),
    ("a", "4", "train"),
]
DEVICES = [("a", "1", "true"), ("b", "2", "false")]
DIAGNOSES = [  # patient 3 has no row
    ("1", "1", "0"),
    ("2", "0", "1"),
    ("4", "1", "0"),
    ("4", "0", "0"),  # conflicts with the row above
    ("5", "1", "1"),  # no image of patient 5
    ("6", "0", "1"),  # patient 6's one image has no split row
]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(the ingestion's output folder, its output)."""
    root = tmp_path_factory.mktemp("ward")
    project = write_package(root, "ward_cxr", {"declaration": DECLARATION, "layout": LAYOUT})
    generate(project, "ward_cxr")
    for number, name in enumerate(IMAGES):
        (root / "images" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((24, 20), 30 * number, np.uint8), "L").save(root / "images" / name)
    for name, header, rows in (
        ("ward-split.csv", ("image", "patient", "split"), SPLITS),
        ("ward-devices.csv", ("image", "patient", "portable"), DEVICES),
        ("ward-diagnoses.csv", ("patient", "Effusion", "Mass"), DIAGNOSES),
    ):
        with (root / name).open("w", newline="") as f:
            csv.writer(f).writerows([header, *rows])
    out = root / "out"
    done = run_clean(
        [
            sys.executable,
            *("-m", "ward_cxr.generated.ward_cxr.ingest"),
            *("--input_prefix", f"{root / 'images'}/", "--input_csv", f"{root}/ward-*.csv"),
            *("--output_dir", str(out), "--output_tfrecord_dir", str(out / "tfrecords")),
            *("--output_image_shape", "16", "16", "--max_bad_fraction", "0.5"),
        ],
        project,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out, done.stdout + done.stderr


def _quarantined(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for f in (out / "_quarantine").glob("*.jsonl") for line in f.open()]


def test_each_image_gets_its_patient_s_labels(ingested: tuple[Path, str]) -> None:
    out, output = ingested
    with duckdb.connect(str(out / "tables.duckdb"), read_only=True) as db:
        rows = db.sql(
            "SELECT path, patient, split, portable, effusion, mass FROM ward_cxr_labels ORDER BY 1"
        ).fetchall()
    assert rows == [
        ("P1/a.png", 1, 0, True, True, False),
        ("P1/b.png", 1, 0, None, True, False),  # no row in the optional devices table
        ("P2/a.png", 2, 0, None, False, True),
        ("P2/b.png", 2, 1, False, False, True),
        ("P3/a.png", 3, 1, None, None, None),  # its patient has no label row
    ]
    manifest = json.loads((out / "_manifest.json").read_text())
    parameters = manifest["parameters"]
    assert parameters["labels_per"] == "patient"
    assert parameters["images_without_patient_labels"] == 1
    assert parameters["subjects_in_several_splits"] == 1
    assert "1 image(s) written without patient labels" in output
    leakage = json.loads((out / "_leakage.json").read_text())
    assert leakage["subjects"] == [{"subject": "2", "splits": ["test", "train"]}]
    folders = {p.parent.name for p in (out / "tfrecords").glob("*/*.tfrecord")}
    assert folders == {"train", "test"}


def test_every_refused_image_and_row_is_quarantined_for_its_patient(
    ingested: tuple[Path, str],
) -> None:
    out, _ = ingested
    found = sorted(
        (q["reason"], q["path"], q["source"].rsplit("/", 1)[-1], q["detail"])
        for q in _quarantined(out)
    )
    conflict = "conflicting label rows (ward-diagnoses.csv:line 4, ward-diagnoses.csv:line 5)"
    assert [(reason, path, source) for reason, path, source, _ in found] == [
        ("duplicate_label_row", "P4", "ward-diagnoses.csv:line 4"),
        ("duplicate_label_row", "P4", "ward-diagnoses.csv:line 5"),
        ("duplicate_label_row", "P4/a.png", "a.png"),
        ("duplicate_label_row", "P4/a.png", "ward-split.csv:line 7"),
        ("labels_without_image", "P5", "ward-diagnoses.csv:line 6"),
        ("missing_split", "P6", "ward-diagnoses.csv:line 7"),
        ("missing_split", "P6/a.png", "a.png"),
    ]
    details = {(path, detail.replace(f"{out.parent}/", "")) for _, path, _, detail in found}
    assert ("P4/a.png", conflict) in details
    assert ("P5", "no image of this patient was found") in details
    assert ("P6", "no image of this patient was used (P6/a.png: no split row)") in details
    stages = json.loads((out / "_manifest.json").read_text())["stages"]
    counts = {
        name: (stage["input"], stage["written"], sum(stage["quarantined"].values()))
        for name, stage in stages.items()
    }
    # Written or quarantined, each one: P3/a.png is written without labels.
    assert counts == {
        "images": (len(IMAGES), 5, 2),
        "label_rows": (len(DIAGNOSES), 2, 4),
        "split_rows": (len(SPLITS), 5, 1),
        "devices_rows": (len(DEVICES), 2, 0),
    }


def test_the_data_dictionary_says_what_ingest_reads(ingested: tuple[Path, str]) -> None:
    out, _ = ingested
    generated = out.parent / "project" / "ward_cxr" / "generated" / "ward_cxr"
    dictionary = (generated / "DATA_DICTIONARY.md").read_text()
    assert "`ingest` reads one label row per patient" in dictionary
    assert "ends in `diagnoses`" in dictionary
    assert "the columns `patient`, `Effusion`, `Mass`" in dictionary
    assert "| `split` | `image`, `patient`, `split` | quarantined (`missing_split`) |" in dictionary
    assert "| `devices` | `image`, `patient`, `portable` | kept (the table is optional) |" in (
        dictionary
    )
