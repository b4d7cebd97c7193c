"""MIMIC-CXR-JPG 2.x: layout parsing, and the ingestion end to end on a synthetic sample."""

from __future__ import annotations

import csv
import gzip
import importlib
import io
import json
import shutil
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import duckdb
import pyarrow.parquet as pq
import pytest
import webdataset
from PIL import Image

from datathon_etl.datasets.mimic_cxr_jpg import parsing
from datathon_etl.datasets.mimic_cxr_jpg.schema import Finding, Labels, Split, View
from datathon_etl.datasets.mimic_cxr_jpg.synthetic import Sample, write_sample
from datathon_etl.framework.ingest.tables import csv_roles
from datathon_etl.framework.manifest import Manifest
from datathon_etl.framework.quarantine import Quarantined, Reason
from datathon_etl.framework.schema import SourceRowError
from datathon_etl.generated.mimic_cxr_jpg import features, rows
from datathon_etl.generated.mimic_cxr_jpg.ingest import SPEC, main

# Hugging Face's datasets (`import datasets` finds the project's datasets/ folder for mypy).
hf_datasets: Any = importlib.import_module("datasets")

DICOM = "02aa804e-bde0afdd-112c0b34-7bc16630-4e384014"
PATH = f"files/p10/p10000032/s50414267/{DICOM}.jpg"

# The release's headers, verbatim (see docs: MIMIC-CXR-JPG 2.0.0 / 2.1.0).
METADATA_HEADER = (
    "dicom_id,subject_id,study_id,PerformedProcedureStepDescription,ViewPosition,Rows,Columns,"
    "StudyDate,StudyTime,ProcedureCodeSequence_CodeMeaning,ViewCodeSequence_CodeMeaning,"
    "PatientOrientationCodeSequence_CodeMeaning"
)
SPLIT_HEADER = "dicom_id,study_id,subject_id,split"
LABEL_HEADER = (
    "subject_id,study_id,Atelectasis,Cardiomegaly,Consolidation,Edema,Enlarged Cardiomediastinum,"
    "Fracture,Lung Lesion,Lung Opacity,No Finding,Pleural Effusion,Pleural Other,Pneumonia,"
    "Pneumothorax,Support Devices"
)


def _label_cells(**codes: str) -> dict[str, str | None]:
    cells: dict[str, str | None] = dict.fromkeys(parsing.LABEL_COLUMNS, "")
    cells.update(subject_id="10000032", study_id="50414267", **codes)
    return cells


def test_path_round_trip():
    """A release path parses to its ids and formats back to the identical path."""
    key = parsing.parse_path(PATH)
    assert key == parsing.ImagePath(10000032, 50414267, DICOM)
    assert parsing.format_path(key) == PATH
    assert parsing.parse_path(f"mimic-cxr-jpg/2.0.0/{PATH}") == key
    assert parsing.parse_path(PATH.removeprefix("files/")) == key  # under --input_prefix files/


@pytest.mark.parametrize(
    "path",
    [
        f"files/p11/p10000032/s50414267/{DICOM}.jpg",  # group is not the subject's first digits
        f"files/p10/p010000032/s50414267/{DICOM}.jpg",  # not canonical
        "files/p10/p10000032/s50414267/index.html",
        f"files/p10/p10000032/{DICOM}.jpg",
    ],
)
def test_paths_outside_the_layout_are_refused(path):
    """A path that would not format back to itself is a PathError, never renamed."""
    with pytest.raises(parsing.PathError):
        parsing.parse_path(path)


@pytest.mark.parametrize(
    ("view_position", "view"),
    [
        ("PA", View.FRONTAL),
        ("AP", View.FRONTAL),
        ("LATERAL", View.LATERAL),
        ("LL", View.LATERAL),
        ("AP AXIAL", View.OTHER),
        ("PA LLD", View.OTHER),
        ("SWIMMERS", View.OTHER),
        ("", View.UNKNOWN),
        (" pa ", View.FRONTAL),
    ],
)
def test_view_normalisation(view_position, view):
    """PA/AP -> frontal, LATERAL/LL -> lateral, blank -> unknown, anything else -> other."""
    assert parsing.normalise_view(view_position) is view


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("1.0", Finding.POSITIVE),
        ("0.0", Finding.NEGATIVE),
        ("-1.0", Finding.UNCERTAIN),
        ("", Finding.NOT_MENTIONED),
        ("2.0", None),
        ("yes", None),
    ],
)
def test_label_codes(cell, expected):
    """The four CheXpert codes map as in the legacy dataset; a blank is not_mentioned, not null."""
    if expected is None:
        with pytest.raises(SourceRowError) as error:
            parsing.parse_label_row(_label_cells(Edema=cell), "c.csv:line 2")
        assert error.value.unknown_code
        assert "files/p10/p10000032/s50414267: Edema: unknown CheXpert code" in str(error.value)
        return
    study, labels = parsing.parse_label_row(_label_cells(Edema=cell), "c.csv:line 2")
    assert study == "files/p10/p10000032/s50414267"
    assert labels.edema is expected
    assert labels.atelectasis is Finding.NOT_MENTIONED


def test_metadata_and_split_rows_key_by_image_path():
    """Metadata and split rows join on the image path; the split is a coded value."""
    cells = {"dicom_id": DICOM, "subject_id": "10000032", "study_id": "50414267"}
    path, view_position = parsing.parse_metadata_row({**cells, "ViewPosition": ""}, "m:line 2")
    assert (path, view_position) == (PATH, "")
    path, split = parsing.parse_split_row({**cells, "split": "validate"}, "s:line 2")
    assert (path, split) == (PATH, Split.VALIDATE)
    key = parsing.image_key(parsing.parse_path(PATH), view_position, split)
    assert (key.view, key.split, parsing.partition(key)) == (
        View.UNKNOWN,
        Split.VALIDATE,
        "validate/unknown",
    )
    assert parsing.row_key(cells) == PATH
    with pytest.raises(SourceRowError) as error:
        parsing.parse_split_row({**cells, "split": "valid"}, "s:line 3")
    assert error.value.unknown_code


def test_declared_headers_are_the_releases():
    """The declared columns are the release's headers, in order."""
    assert ",".join(parsing.METADATA_HEADER) == METADATA_HEADER
    assert ",".join(parsing.SPLIT_COLUMNS) == SPLIT_HEADER
    assert ",".join(parsing.LABEL_COLUMNS) == LABEL_HEADER
    assert SPEC.csv_columns == parsing.LABEL_COLUMNS
    assert set(attrs.asdict(parsing.NO_LABELS).values()) == {None}


def test_csv_files_are_told_apart_by_name():
    """Metadata, split and the chosen label source are picked by the end of their names."""
    assert SPEC.group_labels is not None
    names = [f"d/mimic-cxr-2.0.0-{n}.csv.gz" for n in ("metadata", "split", "chexpert", "negbio")]
    tables, labels = csv_roles(SPEC, names, None)
    assert tables == {"metadata": (names[0],), "split": (names[1],)}
    assert labels == (names[2],)
    assert csv_roles(SPEC, names, "negbio")[1] == (names[3],)
    with pytest.raises(ValueError, match="not one of chexpert, negbio"):
        csv_roles(SPEC, names, "radiologist")
    with pytest.raises(ValueError, match="no split file"):
        csv_roles(SPEC, [names[0], names[2]], None)
    with pytest.raises(ValueError, match="ends in none of"):
        csv_roles(SPEC, [*names, "d/test-set-labeled.csv"], None)


# End to end: one sample, ingested from the files/ tree (gzipped CSVs, CheXpert) and
# from tars (plain CSVs, NegBio).


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    return write_sample(tmp_path_factory.mktemp("sample"), images=30, images_per_tar=16)


@pytest.fixture(scope="module")
def plain_csvs(sample: Sample, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("plain")
    for path in sample.csvs.values():
        (folder / path.name.removesuffix(".gz")).write_bytes(gzip.decompress(path.read_bytes()))
    return folder


def _args(sample: Sample, out: Path, *inputs: str) -> list[str]:
    return [
        *inputs,
        "--output_dir",
        str(out),
        "--output_tfrecord_dir",
        str(out / "tfrecords"),
        "--output_image_shape",
        "64",
        "64",
    ]


@pytest.fixture(scope="module")
def runs(
    sample: Sample, plain_csvs: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, int, str]]:
    """Each run's (output folder, exit code, label source)."""
    by_dir = tmp_path_factory.mktemp("by_dir")
    folder = [
        "--input_prefix",
        f"{sample.root}/files/",
        "--input_csv",
        f"{sample.root}/*.csv.gz",
        "--output_jpg_dir",
        str(by_dir / "jpg"),
        "--output_webdataset_dir",
        str(by_dir / "wds"),
        "--output_parquet_dir",
        str(by_dir / "parquet"),
    ]
    by_tar = tmp_path_factory.mktemp("by_tar")
    tars = [
        "--input_tars",
        f"{sample.root}/*.tar",
        "--input_csv",
        f"{plain_csvs}/*.csv",
        "--labels_source",
        "negbio",
    ]
    return {
        "files": (by_dir, main(_args(sample, by_dir, *folder)), "chexpert"),
        "tars": (by_tar, main(_args(sample, by_tar, *tars)), "negbio"),
    }


def _csv(path: Path) -> list[tuple[str, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(gzip.decompress(path.read_bytes()).decode()))
    return [(f"{path}:line {reader.line_num}", row) for row in reader]


def _quarantine(out: Path) -> dict[str, set[tuple[str, Reason]]]:
    """Quarantined path -> {(source file name or image, reason)}."""
    found: dict[str, set[tuple[str, Reason]]] = {}
    for f in (out / "_quarantine").glob("*.jsonl"):
        for line in f.read_text().splitlines():
            record = Quarantined.from_json(line)
            source = record.source.rsplit("/", 1)[-1].split(".csv")[0].split("-")[-1]
            found.setdefault(record.path, set()).add((source, record.reason))
    return found


@pytest.mark.parametrize("run", ["files", "tars"])
def test_counts_balance_and_every_input_is_counted(runs, sample, run):
    """Images, metadata, split and label rows: input = written + quarantined, each counted."""
    out, code, source = runs[run]
    assert code == 1  # defects were quarantined and --max_bad_fraction is 0
    manifest = Manifest.read(str(out / "_manifest.json"))
    manifest.check()
    stages = manifest.stages
    assert stages["images"].input == sum(1 for _ in (sample.root / "files").rglob("*.jpg"))
    assert stages["images"].written == len(sample.images)
    for table in ("metadata", "split", source):
        stage = "label_rows" if table == source else f"{table}_rows"
        assert stages[stage].input == len(_csv(sample.csvs[table]))
    assert stages["metadata_rows"].written == stages["split_rows"].written == len(sample.images)
    written_studies = {p.rsplit("/", 1)[0] for p in sample.images if p not in sample.unlabelled}
    assert stages["label_rows"].written == len(written_studies)
    if run == "tars":
        assert stages["archives"].input == stages["archives"].written == len(sample.tars)


@pytest.mark.parametrize("run", ["files", "tars"])
def test_the_manifest_records_the_sources_sizes_and_the_input_folder(runs, sample, run):
    """Each written image's source size (read here from the file), and the folder's totals."""
    out, _, _ = runs[run]
    parameters = Manifest.read(str(out / "_manifest.json")).parameters
    expected: Counter[tuple[int, int]] = Counter()
    for path in sample.images:
        with Image.open(sample.root / path) as image:
            expected[image.size] += 1
    recorded = parameters["source_pixel_sizes"]
    assert recorded["grid"] == 1
    assert {(w, h): n for w, h, n in recorded["sizes"]} == expected
    folders = [f for f in parameters["inputs"] if "files" in f]
    if run == "tars":
        assert folders == []
        return
    files = [p for p in (sample.root / "files").rglob("*") if p.is_file()]
    (folder,) = folders
    assert (folder["uri"], folder["files"], folder["bytes"]) == (
        f"{sample.root}/files/",
        len(files),
        sum(p.stat().st_size for p in files),
    )


@pytest.mark.parametrize("run", ["files", "tars"])
def test_each_defect_is_quarantined_with_its_reason(runs, sample, run):
    """Every planted defect is refused (image and rows) under a precise reason."""
    out, _, source = runs[run]
    found, d = _quarantine(out), sample.defects
    image = "jpg" if run == "files" else "tar"

    def reasons(path: str) -> set[tuple[str, Reason]]:
        # Images' sources are files or tar members: name them by kind.
        return {(image if s.endswith((".jpg", ".tar")) else s, r) for s, r in found[path]}

    assert reasons(d["image_without_metadata"]) == {
        (image, Reason.MISSING_METADATA),
        ("split", Reason.MISSING_METADATA),
    }
    assert reasons(d["image_without_split"]) == {
        (image, Reason.MISSING_SPLIT),
        ("metadata", Reason.MISSING_SPLIT),
    }
    study = d["image_without_split"].rsplit("/", 1)[0]
    assert found[study] == {(source, Reason.MISSING_SPLIT)}
    # The unknown code refuses the row, and the study's image with its rows.
    assert found[d["unknown_code"]] == {(source, Reason.UNKNOWN_CODE)}
    (unknown_image,) = (p for p in found if p.startswith(d["unknown_code"] + "/"))
    assert {r for _, r in found[unknown_image]} == {Reason.UNKNOWN_CODE}
    assert len(found[unknown_image]) == 3  # the image, its metadata and split rows
    assert found[d["labels_without_image"]] == {(source, Reason.LABELS_WITHOUT_IMAGE)}
    assert found[d["duplicate_label_row"]] == {(source, Reason.DUPLICATE_LABEL_ROW)}
    corrupt = {r for _, r in found[d["corrupt_jpeg"]]}
    assert len(corrupt) == 1
    assert corrupt <= {Reason.TRUNCATED_IMAGE, Reason.UNDECODABLE_IMAGE}
    assert len(found[d["corrupt_jpeg"]]) == 3
    assert found[d["corrupt_jpeg"].rsplit("/", 1)[0]] == {(source, *corrupt)}
    for kept in (d["blank_view_position"], *sample.unlabelled):
        assert kept not in found


@pytest.mark.parametrize("run", ["files", "tars"])
def test_records_read_back_with_their_studys_labels(runs, sample, run):
    """load_dataset reads each image once, labelled by its study; null only without a row."""
    out, _, source = runs[run]
    expected: dict[str, Labels] = {}
    for where, row in _csv(sample.csvs[source]):
        try:
            study, labels = parsing.parse_label_row(row, where)
        except ValueError:
            continue
        expected[study] = labels
    seen = {}
    pattern = str(out / "tfrecords" / "*" / "*" / "*.tfrecord")
    for parsed in features.load_dataset(pattern, decode_image=False):
        example = features.from_parsed(parsed)
        key = example.key
        assert example.path == parsing.format_path(key)
        assert example.labels == expected.get(parsing.group_of(key), parsing.NO_LABELS)
        seen[example.path] = example
    assert set(seen) == set(sample.images)
    assert {p for p, e in seen.items() if e.labels == parsing.NO_LABELS} == set(sample.unlabelled)
    blank = seen[sample.defects["blank_view_position"]].key
    assert (blank.view_position, blank.view) == ("", View.UNKNOWN)
    for decoded in features.load_dataset(pattern).take(2):
        assert decoded["jpg_bytes"].shape == (64, 64, 1)


def test_tfrecords_split_by_split_and_view_and_table_has_nulls(runs):
    """Records sit in <split>/<view>; the DuckDB table holds NULL labels for unlabelled studies."""
    out, _, _ = runs["files"]
    folders = set()
    for shard in (out / "tfrecords").glob("*/*/*.tfrecord"):
        folder = f"{shard.parent.parent.name}/{shard.parent.name}"
        for parsed in features.load_dataset(str(shard), decode_image=False):
            assert parsing.partition(features.from_parsed(parsed).key) == folder
            folders.add(folder)
    assert {"train/frontal", "train/lateral", "train/unknown", "test/frontal"} <= folders
    with duckdb.connect(str(out / "tables.duckdb"), read_only=True) as db:
        columns = [c[0] for c in db.sql("DESCRIBE mimic_cxr_jpg_labels").fetchall()]
        ((nulls, total),) = db.sql(
            "SELECT count(*) FILTER (WHERE edema IS NULL), count(*) FROM mimic_cxr_jpg_labels"
        ).fetchall()
    assert columns == list(rows.ID_COLUMNS) + list(rows.LABEL_COLUMNS)
    assert nulls == 2
    jpgs = {str(p.relative_to(out / "jpg")) for p in (out / "jpg").rglob("*.jpg")}
    assert len(jpgs) == total > 30


@pytest.mark.parametrize("run", ["files", "tars"])
def test_leakage_and_unlabelled_images_are_reported(runs, sample, run):
    """A subject in two splits is reported (nothing dropped); unlabelled images are counted."""
    out, _, _ = runs[run]
    leakage = json.loads((out / "_leakage.json").read_text())
    assert leakage["subjects_in_several_splits"] == len(sample.subjects_in_several_splits) == 1
    assert [s["subject"] for s in leakage["subjects"]] == list(sample.subjects_in_several_splits)
    assert leakage["subjects"][0]["splits"] == ["test", "train"]
    parameters: Mapping[str, Any] = Manifest.read(str(out / "_manifest.json")).parameters
    assert parameters["subjects_in_several_splits"] == 1
    assert parameters["images_without_study_labels"] == len(sample.unlabelled) == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--labels_source", "radiologist"], "--labels_source: 'radiologist' is not one of"),
        (["--input_csv", "{root}/*chexpert.csv.gz"], "--input_csv: no metadata file"),
        (["--input_prefix", "{root}/nothing/"], "--input_prefix: "),
    ],
)
def test_bad_inputs_are_one_line_errors(sample, tmp_path, capsys, change, message):
    """A wrong label source, a missing table or an empty folder exits 2 before running."""
    args = _args(
        sample,
        tmp_path / "out",
        "--input_prefix",
        f"{sample.root}/files/",
        "--input_csv",
        f"{sample.root}/*.csv.gz",
    )
    flag, value = change[0], change[1].format(root=sample.root)
    if flag in args:
        args[args.index(flag) + 1] = value
    else:
        args += [flag, value]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert message in err[0]
    assert not (tmp_path / "out").exists()


def test_label_rows_missing_a_column_are_refused_before_running(sample, tmp_path, capsys):
    """A label CSV without a declared column names the file and column."""
    shutil.copytree(sample.root, tmp_path / "s", ignore=shutil.ignore_patterns("*.tar"))
    bad = tmp_path / "s" / "mimic-cxr-2.0.0-chexpert.csv.gz"
    bad.write_bytes(gzip.compress(b"subject_id,study_id,Atelectasis\n10000032,50414267,1.0\n"))
    args = _args(
        sample,
        tmp_path / "out",
        "--input_prefix",
        f"{tmp_path}/s/files/",
        "--input_csv",
        f"{tmp_path}/s/*.csv.gz",
    )
    assert main(args) == 2
    assert "lacks the column(s) Cardiomegaly" in capsys.readouterr().err


def test_synthetic_sample_is_marked_and_deterministic(sample, tmp_path):
    """The sample says it is synthetic, has the release's headers, and is deterministic."""
    assert "SYNTHETIC" in (sample.root / "README.txt").read_text()
    headers = {name: _csv_header(path) for name, path in sample.csvs.items()}
    assert headers == {
        "metadata": METADATA_HEADER,
        "split": SPLIT_HEADER,
        "chexpert": LABEL_HEADER,
        "negbio": LABEL_HEADER,
    }
    again = write_sample(tmp_path, images=30, images_per_tar=16)
    assert attrs.evolve(again, root=sample.root, tars=sample.tars, csvs=sample.csvs) == sample
    for name, path in again.csvs.items():
        assert path.read_bytes() == sample.csvs[name].read_bytes()
    first_id = next(iter(_csv(sample.csvs["split"])))[1]
    assert len(first_id["subject_id"]) == len(first_id["study_id"]) == 8
    assert [len(part) for part in first_id["dicom_id"].split("-")] == [8] * 5


def _csv_header(path: Path) -> str:
    return gzip.decompress(path.read_bytes()).decode().split("\n", 1)[0]


def test_webdataset_and_parquet_shards_hold_the_labels_table_nulls_included(runs):
    """Per study: images without study labels keep their nulls in the JSON and the Parquet."""
    out, _, _ = runs["files"]
    with duckdb.connect(str(out / "tables.duckdb"), read_only=True) as db:
        table = db.sql("SELECT * FROM mimic_cxr_jpg_labels").to_arrow_table().to_pylist()
    expected = {row["path"]: row for row in table}
    assert any(None in row.values() for row in table)
    parquet = sorted(map(str, out.glob("parquet/*/*/*.parquet")))
    found = {}
    for row in pq.read_table(parquet).to_pylist():
        image = row.pop("jpg_bytes")
        assert image["path"] == row["path"]
        found[row["path"]] = row
    assert found == expected
    tars = sorted(map(str, out.glob("wds/*/*/*.tar")))
    samples = webdataset.WebDataset(tars, shardshuffle=False, empty_check=False)
    assert {(s := json.loads(sample["json"]))["path"]: s for sample in samples} == expected
    loaded = hf_datasets.load_dataset("parquet", data_files=parquet, split="train")
    assert sorted(loaded["path"]) == sorted(expected)
    assert {r["path"]: {k: v for k, v in r.items() if k != "jpg_bytes"} for r in loaded} == (
        expected
    )
