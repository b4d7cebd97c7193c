"""MIMIC-CXR DICOM: `datathon-etl mimic_cxr_dicom ingest` end to end on real DICOM files.

The sample is a MIMIC-CXR DICOM tree (``files/p<NN>/p<subject>/s<study>/<dicom_id>.dcm``)
of the real chest radiographs in ``tests/data/dicom`` (see its README for their
sources and licences) under made-up ids, with MIMIC-CXR-JPG's split and CheXpert
CSVs, and a few bad files. Expected values come from reading the files with
pydicom, not from the pipeline.
"""

from __future__ import annotations

import csv
import gzip
import io
import shutil
import tarfile
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pydicom
import pytest
from PIL import Image

from datathon_etl.datasets.mimic_cxr_dicom import parsing
from datathon_etl.datasets.mimic_cxr_dicom.schema import Finding, View
from datathon_etl.framework.manifest import Manifest
from datathon_etl.framework.quarantine import Quarantined, Reason
from datathon_etl.generated.mimic_cxr_dicom import features, rows
from datathon_etl.generated.mimic_cxr_dicom.ingest import main

DATA = Path(__file__).parent / "data"
DICOM = DATA / "dicom"

# Path in the tree -> the file it is a copy of; its split.
GOOD = {
    "files/p10/p10000032/s50414267/0a-uncompressed.dcm": ("RG1_UNCR_quarter.dcm", "train"),
    "files/p10/p10000032/s50414267/0b-jpeg2000.dcm": ("RG1_J2KI.dcm", "train"),
    "files/p11/p11000011/s51000011/1a-extremity.dcm": ("RG3_J2KI.dcm", "validate"),
    # No ViewPosition in its header: view unknown. Its study has no label row.
    "files/p12/p12000012/s52000012/2a-no-view.dcm": ("nih_chestxray14_dx.dcm", "test"),
}
BAD = {
    "files/p13/p13000013/s53000013/3a-report.dcm": ("test-SR.dcm", Reason.NON_IMAGE_DICOM),
    "files/p13/p13000013/s53000013/3b-truncated.dcm": ("MR_truncated.dcm", Reason.TRUNCATED_IMAGE),
    # A PNG under a .dcm name: a data set that reads header attributes takes DICOM only.
    "files/p13/p13000013/s53000013/3c-png.dcm": (
        "../images/00000001_000.png",
        Reason.WRONG_IMAGE_FORMAT,
    ),
}
UNLABELLED_STUDY = "files/p12/p12000012/s52000012"
LABEL_HEADER = [
    "subject_id",
    "study_id",
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Enlarged Cardiomediastinum",
    "Fracture",
    "Lung Lesion",
    "Lung Opacity",
    "No Finding",
    "Pleural Effusion",
    "Pleural Other",
    "Pneumonia",
    "Pneumothorax",
    "Support Devices",
]


def _gzip_csv(path: Path, header: list[str], body: list[list[str]]) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(body)
    path.write_bytes(gzip.compress(text.getvalue().encode()))


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tree, a tar and a tar.gz of it, and the split and CheXpert CSVs."""
    root = tmp_path_factory.mktemp("mimic_cxr_dicom")
    splits = []
    for path, (source, split) in GOOD.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DICOM / source, root / path)
        key = parsing.parse_path(path)
        splits.append([key.dicom_id, str(key.study_id), str(key.subject_id), split])
    for path, (source, _) in BAD.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DICOM / source, root / path)
        key = parsing.parse_path(path)
        splits.append([key.dicom_id, str(key.study_id), str(key.subject_id), "train"])
    _gzip_csv(
        root / "mimic-cxr-2.0.0-split.csv.gz",
        ["dicom_id", "study_id", "subject_id", "split"],
        splits,
    )
    studies = sorted({p.rsplit("/", 1)[0] for p in [*GOOD, *BAD]} - {UNLABELLED_STUDY})
    labels = []
    for n, study in enumerate(studies):
        subject, study_id = study.split("/")[2][1:], study.split("/")[3][1:]
        codes = ["1.0", "0.0", "-1.0", ""]
        labels.append([subject, study_id, *(codes[(n + i) % 4] for i in range(14))])
    _gzip_csv(root / "mimic-cxr-2.0.0-chexpert.csv.gz", LABEL_HEADER, labels)
    with tarfile.open(root / "files.tar", "w") as tar:
        tar.add(root / "files", arcname="files")
    with tarfile.open(root / "files.tar.gz", "w:gz") as tar:
        tar.add(root / "files", arcname="files")
    return root


def _run(sample: Path, out: Path, *inputs: str) -> int:
    return main(
        [
            *inputs,
            *("--input_csv", f"{sample}/*.csv.gz"),
            *("--output_dir", str(out), "--output_jpg_dir", str(out / "jpg")),
            *("--output_tfrecord_dir", str(out / "tfrecords")),
            *("--output_parquet_dir", str(out / "parquet")),
            *("--output_image_shape", "64", "64"),
            "--max_bad_fraction=0.5",
            "--no_card",
        ]
    )


@pytest.fixture(scope="module")
def runs(sample: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, int]]:
    """Folder and tar (members read by range) runs with 8-bit JPEGs; a tar.gz run with 16-bit PNGs.

    Members of a tar.gz are transformed as they stream by, so their header
    values cross the join packed with their bytes.
    """
    folder, packed = tmp_path_factory.mktemp("folder"), tmp_path_factory.mktemp("targz")
    tar = tmp_path_factory.mktemp("tar")
    return {
        "folder": (folder, _run(sample, folder, "--input_prefix", f"{sample}/files/")),
        "tar": (tar, _run(sample, tar, "--input_tars", f"{sample}/files.tar")),
        "targz": (
            packed,
            _run(
                sample,
                packed,
                *("--input_tars", f"{sample}/files.tar.gz"),
                *("--output_image_format", "png", "--output_bit_depth", "16"),
            ),
        ),
    }


def _header(path: str) -> pydicom.Dataset:
    return pydicom.dcmread(DICOM / GOOD[path][0], stop_before_pixels=True)


def _table(out: Path) -> dict[str, dict[str, Any]]:
    with duckdb.connect(str(out / "tables.duckdb"), read_only=True) as db:
        table = db.sql("SELECT * FROM mimic_cxr_dicom_labels").fetch_arrow_table()
    return {row["path"]: row for row in table.to_pylist()}


@pytest.mark.parametrize("run", ["folder", "tar", "targz"])
def test_counts_balance_and_bad_files_are_quarantined(runs, run):
    """Every image and row is counted; each bad file is quarantined with its reason."""
    out, code = runs[run]
    assert code == 0
    manifest = Manifest.read(str(out / "_manifest.json"))
    manifest.check()
    assert manifest.stages["images"].input == len(GOOD) + len(BAD)
    assert manifest.stages["images"].written == len(GOOD)
    assert manifest.stages["split_rows"].input == len(GOOD) + len(BAD)
    found = {
        (record.path, record.reason)
        for f in (out / "_quarantine").glob("*.jsonl")
        for record in map(Quarantined.from_json, f.read_text().splitlines())
        if not record.source.endswith(".csv.gz") and ".csv.gz:" not in record.source
    }
    assert found == {(path, reason) for path, (_, reason) in BAD.items()}


@pytest.mark.parametrize("run", ["folder", "tar", "targz"])
def test_header_columns_hold_the_files_own_values(runs, run):
    """View and metadata columns equal what pydicom reads from each file; labels per study."""
    out, _ = runs[run]
    table = _table(out)
    assert set(table) == set(GOOD)
    for path, row in table.items():
        header = _header(path)
        assert row["view_position"] == header.get("ViewPosition", "")
        assert row["view"] == View.from_source(header.get("ViewPosition", ""))
        assert (row["rows"], row["columns"]) == (header.Rows, header.Columns)
        spacing = header.get("PixelSpacing")
        expected = (float(spacing[0]), float(spacing[1])) if spacing else (None, None)
        assert (row["pixel_spacing_row"], row["pixel_spacing_column"]) == expected
        assert row["patient_sex"] == (header.get("PatientSex") or None)
        assert row["manufacturer"] == (header.get("Manufacturer") or None)
        study = path.rsplit("/", 1)[0]
        assert (row["edema"] is None) == (study == UNLABELLED_STUDY)
    assert any(row["pixel_spacing_row"] is not None for row in table.values())
    frontal = [p for p in GOOD if _header(p).get("ViewPosition") in ("PA", "AP")]
    assert {table[p]["view"] for p in frontal} == {View.FRONTAL}
    assert table["files/p12/p12000012/s52000012/2a-no-view.dcm"]["view"] == View.UNKNOWN
    assert Finding.POSITIVE in {table[p]["atelectasis"] for p in GOOD}


@pytest.mark.parametrize("run", ["folder", "tar", "targz"])
def test_tfrecords_sit_in_split_and_header_view_folders(runs, run):
    """Each record is in <split>/<view of its header>/ and reads back as the table's row."""
    out, _ = runs[run]
    table = _table(out)
    seen = set()
    for shard in (out / "tfrecords").glob("*/*/*.tfrecord"):
        folder = f"{shard.parent.parent.name}/{shard.parent.name}"
        for parsed in features.load_dataset(str(shard), decode_image=False):
            example = features.from_parsed(parsed)
            assert parsing.partition(example.key) == folder
            assert rows.labels_row(example) | {"path": example.path} == table[example.path]
            seen.add(example.path)
    assert seen == set(GOOD)


def test_image_tree_has_output_extensions_8_and_16_bit(runs):
    """The .dcm images are written as .jpg (8-bit) or .png (16-bit), bone bright."""
    for run, suffix, mode in (("folder", ".jpg", "L"), ("targz", ".png", "I;16")):
        out, _ = runs[run]
        written = {str(p.relative_to(out / "jpg")) for p in (out / "jpg").rglob("*.*")}
        assert written == {p.removesuffix(".dcm") + suffix for p in GOOD}
        chest = out / "jpg" / "files/p10/p10000032/s50414267/0a-uncompressed"
        with Image.open(chest.with_suffix(suffix)) as image:
            assert (image.mode, image.size) == (mode, (64, 64))
            pixels = np.asarray(image, dtype=np.float64)
        # MONOCHROME1 inverted: the lungs (left and right of the centre) darker than the spine.
        assert pixels[24:40, 10:20].mean() < pixels[24:40, 28:36].mean()


def test_no_undeclared_header_value_reaches_any_output(runs):
    """Identifying header values (name, ids, UIDs, dates) appear in no output file."""
    secrets = set()
    for path in GOOD:
        header = _header(path)
        for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "SOPInstanceUID"):
            secrets.add(str(header.get(keyword, "")).encode())
        secrets.add(str(header.get("InstitutionName", "")).encode())
        secrets.add(str(header.get("PatientBirthDate", "")).encode())
    secrets = {s for s in secrets if len(s) >= 6 and s != b"None"}
    assert len(secrets) >= 8
    for run in runs.values():
        for f in run[0].rglob("*"):
            if f.is_file():
                data = f.read_bytes()
                assert not [s for s in secrets if s in data], f


def test_the_metadata_csv_is_a_usage_error(sample, tmp_path, capsys):
    """The view comes from the headers: a metadata CSV is refused in one line, not ignored."""
    metadata = tmp_path / "mimic-cxr-2.0.0-metadata.csv.gz"
    _gzip_csv(metadata, ["dicom_id", "subject_id", "study_id", "ViewPosition"], [])
    argv = ["--input_prefix", f"{sample}/files/", "--input_csv", f"{sample}/*.csv.gz"]
    code = main([*argv, str(metadata), "--output_dir", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert "metadata.csv.gz: its name ends in none of split, chexpert, negbio" in err[0]
