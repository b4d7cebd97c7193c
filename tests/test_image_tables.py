"""Labels per image with a side table joined in: an ISIC-style metadata CSV.

A scratch skin-lesion data set, declared outside the repository, has one
label row per image (``ISIC_2019_Training_GroundTruth.csv``, the image's id
in ``image``) and a per-image metadata table (``..._Metadata.csv``) whose
anatomical site completes each image's key and picks its TFRecord folder.
Its layout module follows `TablesLayout`; it is generated and ingested
through the generated entry point.
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
"""A scratch ISIC-style data set: ``ISIC_<7 digits>.jpg`` in one folder."""

from __future__ import annotations

import enum

import attrs

from datathon_etl.framework.schema import Dataset, UnknownCodeError, column


class Site(enum.IntEnum):
    UNKNOWN = 0
    HEAD = 1
    TORSO = 2

    @classmethod
    def from_source(cls, text: str) -> Site:
        codes = {"": cls.UNKNOWN, "head/neck": cls.HEAD, "anterior torso": cls.TORSO}
        if text.strip() not in codes:
            raise UnknownCodeError(f"unknown site {text!r}")
        return codes[text.strip()]


@attrs.frozen
class Key:
    image: str = column("The image's id, its file name less .jpg.")
    site: Site = column("The anatomical site, from the metadata table.", default=Site.UNKNOWN)


@attrs.frozen
class Labels:
    melanoma: bool = column("Diagnosed melanoma.", source="MEL")
    nevus: bool = column("Diagnosed melanocytic nevus.", source="NV")


DATASET = Dataset(
    name="lesions",
    description="A scratch data set labelled per image, with a metadata table.",
    key=Key,
    labels=Labels,
    layout="lesions.layout",
    path_source="image",
)
'''

LAYOUT = '''
"""``ISIC_<7 digits>.jpg``; a metadata row per image gives its site."""

from __future__ import annotations

import re

import attrs

from datathon_etl.framework.ingest.spec import ImageTable
from datathon_etl.framework.quarantine import Reason
from datathon_etl.framework.schema import column, parse_source_row
from lesions.declaration import Key, Site

PARTITIONS = tuple(s.name.lower() for s in Site)
_PATH = re.compile(r"(?:^|/)(?P<image>ISIC_\\d{7})(?:\\.jpg)?$")


@attrs.frozen
class MetadataRow:
    image: str = column("The image's id.")
    site: Site = column("Its site.", source="anatom_site_general")


def format_path(key: Key) -> str:
    return f"{key.image}.jpg"


def parse_path(path: str) -> Key:
    match = _PATH.search(path)
    if match is None:
        raise ValueError(f"lesions: {path}: not ISIC_<7 digits>[.jpg]")
    return Key(match["image"])


def row_key(row):
    return format_path(parse_path((row.get("image") or "").strip()))


def parse_metadata_row(row, where):
    """Only the site travels to the join, not the whole row."""
    metadata = parse_source_row(MetadataRow, row, f"lesions: {where}")
    return format_path(parse_path(metadata.image)), metadata.site


COLUMNS = ("image", "anatom_site_general")
TABLES = (ImageTable("metadata", COLUMNS, parse_metadata_row, Reason.MISSING_METADATA, Site),)


def image_key(key: Key, site: Site) -> Key:
    return attrs.evolve(key, site=site)


def partition(key: Key) -> str:
    return key.site.name.lower()
'''

IMAGES = [f"ISIC_000000{n}" for n in range(1, 6)]
GROUND_TRUTH = [(f"ISIC_000000{n}", str(n % 2), str(1 - n % 2)) for n in range(1, 7)]
METADATA = [
    ("ISIC_0000001", "head/neck"),
    ("ISIC_0000002", "anterior torso"),
    ("ISIC_0000003", ""),
    # ISIC_0000004 has no metadata row; ISIC_0000005 two that disagree.
    ("ISIC_0000005", "head/neck"),
    ("ISIC_0000005", "anterior torso"),
    ("ISIC_0000007", "head/neck"),  # no such image
]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the generated package's project folder, a folder of inputs)."""
    root = tmp_path_factory.mktemp("lesions")
    project = write_package(root, "lesions", {"declaration": DECLARATION, "layout": LAYOUT})
    generate(project, "lesions")
    inputs = root / "inputs"
    (inputs / "images").mkdir(parents=True)
    for number, name in enumerate(IMAGES):
        pixels = np.full((24, 20, 3), 40 * number, np.uint8)
        Image.fromarray(pixels, "RGB").save(inputs / "images" / f"{name}.jpg")
    for name, header, rows in (
        ("ISIC_2019_Training_GroundTruth.csv", ("image", "MEL", "NV"), GROUND_TRUTH),
        ("ISIC_2019_Training_Metadata.csv", ("image", "anatom_site_general"), METADATA),
    ):
        with (inputs / name).open("w", newline="") as f:
            csv.writer(f).writerows([header, *rows])
    return project, inputs


def _ingest(project: Path, inputs: Path, csvs: str, out: Path) -> tuple[int, str]:
    done = run_clean(
        [
            sys.executable,
            *("-m", "lesions.generated.lesions.ingest"),
            *("--input_prefix", f"{inputs / 'images'}/", "--input_csv", csvs),
            *("--output_dir", str(out), "--output_tfrecord_dir", str(out / "tfrecords")),
            *("--output_image_shape", "16", "16", "--max_bad_fraction", "0.5"),
        ],
        project,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def ingested(generated: tuple[Path, Path]) -> Path:
    """The output folder of an ingestion of every input."""
    project, inputs = generated
    out = inputs.parent / "out"
    code, output = _ingest(project, inputs, f"{inputs}/*.csv", out)
    assert code == 0, output
    return out


def test_each_image_s_key_is_completed_by_its_metadata_row(ingested: Path) -> None:
    with duckdb.connect(str(ingested / "tables.duckdb"), read_only=True) as db:
        rows = db.sql(
            "SELECT path, site, melanoma, nevus FROM lesions_labels ORDER BY 1"
        ).fetchall()
    assert rows == [
        ("ISIC_0000001.jpg", 1, True, False),
        ("ISIC_0000002.jpg", 2, False, True),
        ("ISIC_0000003.jpg", 0, True, False),
    ]
    folders = {
        shard.parent.name: shard.stat().st_size > 0
        for shard in (ingested / "tfrecords").glob("*/*.tfrecord")
    }
    assert folders == {"unknown": True, "head": True, "torso": True}


def test_images_and_rows_the_metadata_refuses_are_quarantined(ingested: Path) -> None:
    quarantined: list[dict[str, Any]] = [
        json.loads(line) for f in (ingested / "_quarantine").glob("*.jsonl") for line in f.open()
    ]
    found = sorted(
        (q["reason"], q["path"], q["source"].rsplit("/", 1)[-1], q["detail"]) for q in quarantined
    )
    metadata = "ISIC_2019_Training_Metadata.csv"
    truth = "ISIC_2019_Training_GroundTruth.csv"
    assert [(reason, path, source) for reason, path, source, _ in found] == [
        ("duplicate_label_row", "ISIC_0000005.jpg", "ISIC_0000005.jpg"),
        ("duplicate_label_row", "ISIC_0000005.jpg", f"{truth}:line 6"),
        ("duplicate_label_row", "ISIC_0000005.jpg", f"{metadata}:line 5"),
        ("duplicate_label_row", "ISIC_0000005.jpg", f"{metadata}:line 6"),
        ("labels_without_image", "ISIC_0000006.jpg", f"{truth}:line 7"),
        ("labels_without_image", "ISIC_0000007.jpg", f"{metadata}:line 7"),
        ("missing_metadata", "ISIC_0000004.jpg", "ISIC_0000004.jpg"),
        ("missing_metadata", "ISIC_0000004.jpg", f"{truth}:line 5"),
    ]
    details = {path: detail for _, path, _, detail in found}
    assert details["ISIC_0000004.jpg"] == "no metadata row"
    assert details["ISIC_0000005.jpg"].startswith("conflicting metadata rows (")
    stages = json.loads((ingested / "_manifest.json").read_text())["stages"]
    counts = {
        name: (stage["input"], stage["written"], sum(stage["quarantined"].values()))
        for name, stage in stages.items()
    }
    assert counts == {
        "images": (len(IMAGES), 3, 2),
        "label_rows": (len(GROUND_TRUTH), 3, 3),
        "metadata_rows": (len(METADATA), 3, 3),
    }


def test_without_the_metadata_file_the_run_stops_in_one_line(
    generated: tuple[Path, Path], tmp_path: Path
) -> None:
    project, inputs = generated
    truth = f"{inputs}/ISIC_2019_Training_GroundTruth.csv"
    code, output = _ingest(project, inputs, truth, tmp_path / "out")
    assert code == 2
    assert (
        output.strip()
        .splitlines()[-1]
        .endswith("--input_csv: no metadata file (a name ending in metadata.csv[.gz])")
    )
