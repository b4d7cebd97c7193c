"""NIH ChestX-ray14 through `datathon-etl nih_cxr14 ingest`, on real label rows and images.

Inputs: the release's real ``Data_Entry_2017_v2020.csv`` rows
(``tests/data/labels/nih_sample_rows.csv``: its quirky header, multi-valued
``Finding Labels``) and its two real images (``tests/data/images/``), plus
copies of one of them under the names of two other real rows (real pixels,
another row's labels) so that multi-hot rows are ingested too. The split
lists are written here in the release's format (one file name per line);
which image is in which list is this test's choice, not the release's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.pipeline_outputs import duckdb_table, manifest_stages, quarantine_records

DATA = Path(__file__).parent / "data"
ROWS = DATA / "labels" / "nih_sample_rows.csv"
IMAGES = ("00000001_000.png", "00027426_000.png")
COPIES = {"00000001_001.png": "00000001_000.png", "00000004_000.png": "00000001_000.png"}
TRAIN_VAL = ("00000001_000.png", "00000001_001.png", "", "99999999_000.png", "readme.txt")
TEST = (
    "00027426_000.png",
    "00000004_000.png",
    "00000004_000.png",
    "00000001_001.png",
    "00000005_000.png",
)
# Rows a real CSV could hold but the release does not: an undeclared finding, a blank cell.
BAD_ROWS = (
    "00000001_000.png,Cardiomegaly|Flu,0,1,57,M,PA,2682,2749,0.143,0.143\n"
    "00027426_000.png,,0,27426,53,M,PA,2048,2500,0.168,0.168\n"
)
SIZE = 32


def _ingest(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "datathon-etl"
    return subprocess.run(
        [str(script), "nih_cxr14", "ingest", *argv],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nih")
    images = root / "images"
    images.mkdir()
    for name in IMAGES:
        shutil.copy(DATA / "images" / name, images / name)
    for name, real in COPIES.items():
        shutil.copy(DATA / "images" / real, images / name)
    shutil.copy(ROWS, root / "Data_Entry_2017_v2020.csv")
    header = ROWS.read_text().splitlines()[0]
    (root / "bad_rows.csv").write_text(f"{header}\n{BAD_ROWS}")
    (root / "train_val_list.txt").write_text("\n".join(TRAIN_VAL) + "\n")
    (root / "test_list.txt").write_text("\n".join(TEST) + "\n")
    return root


@pytest.fixture(scope="module")
def ingested(inputs: Path) -> Path:
    done = _ingest(
        inputs,
        *("--input_prefix", "images/", "--input_csv", "Data_Entry_2017_v2020.csv"),
        *("--split_lists", "train_val_list.txt", "test_list.txt"),
        *("--output_dir", "out", "--output_tfrecord_dir", "out/tfrecords"),
        *("--output_image_shape", str(SIZE), str(SIZE), "--max_bad_fraction", "1"),
    )
    assert done.returncode == 0, done.stderr
    return inputs / "out"


def test_findings_metadata_and_split_are_read_as_declared(ingested: Path) -> None:
    """Each image's flags are its real row's findings; the split is its list's."""
    table = duckdb_table(ingested / "tables.duckdb", "nih_cxr14_labels").to_pylist()
    flags = {row["path"]: sorted(k for k, v in row.items() if v is True) for row in table}
    assert flags == {
        "00000001_000.png": ["cardiomegaly"],
        "00027426_000.png": ["no_finding"],
        "00000004_000.png": ["mass", "nodule"],
    }
    metadata = {
        row["path"]: (
            row["patient"],
            row["index"],
            row["split"],
            row["follow_up"],
            row["age"],
            row["sex"],
            row["view"],
        )
        for row in table
    }
    assert metadata == {
        "00000001_000.png": (1, 0, 0, 0, 57, 0, 0),
        "00000004_000.png": (4, 0, 1, 0, 82, 0, 1),
        "00027426_000.png": (27426, 0, 1, 0, 53, 0, 0),
    }
    folders = sorted(p.parent.name for p in (ingested / "tfrecords").glob("*/*.tfrecord"))
    assert folders == ["test", "train_val"]


def test_every_row_line_and_image_is_counted(ingested: Path) -> None:
    rows = len(ROWS.read_text().splitlines()) - 1
    stages = manifest_stages(str(ingested))["stages"]
    assert stages["images"] == {
        "input": 4,
        "written": 3,
        "skipped": 0,
        # 00000001_001.png: listed in both lists, refused for it.
        "quarantined": {"duplicate_label_row": 1},
    }
    assert stages["label_rows"] == {
        "input": rows,
        "written": 3,
        "skipped": 0,
        "quarantined": {
            "duplicate_label_row": 1,  # 00000001_001.png: in both lists
            "labels_without_image": rows - 4,  # 00000005_000.png and those in no list
        },
    }
    assert stages["split_lists"] == {
        "input": 9,
        "written": 3,
        "skipped": 0,
        "quarantined": {
            "duplicate_label_row": 3,
            "labels_without_image": 2,
            "unparseable_path": 1,
        },
    }


def test_list_lines_are_quarantined_with_where_they_are(ingested: Path) -> None:
    records = quarantine_records(str(ingested), {f"{ingested.parent}/": ""})
    lines = sorted(
        (r["source"], r["reason"], r["detail"]) for r in records if ".txt:" in r["source"]
    )
    conflict = "conflicting split list rows (test_list.txt:line 4, train_val_list.txt:line 2)"
    # The image the lists disagree on carries their reason (not image_without_labels).
    images = [(r["reason"], r["detail"]) for r in records if r["path"] == "00000001_001.png"]
    assert images == [("duplicate_label_row", conflict)] * 4  # its file, row and two lines
    assert lines == [
        (
            "test_list.txt:line 3",
            "duplicate_label_row",
            "identical to test_list.txt:line 2, which was used",
        ),
        ("test_list.txt:line 4", "duplicate_label_row", conflict),
        ("test_list.txt:line 5", "labels_without_image", "no image has this path"),
        ("train_val_list.txt:line 2", "duplicate_label_row", conflict),
        ("train_val_list.txt:line 4", "labels_without_image", "no image has this path"),
        (
            "train_val_list.txt:line 5",
            "unparseable_path",
            "nih_cxr14: readme.txt: not <8 digits>_<3 digits>.png",
        ),
    ]


def test_a_patient_in_both_split_lists_is_reported(inputs: Path, tmp_path: Path) -> None:
    """The official split is by patient: one in both lists is listed, not dropped."""
    (tmp_path / "train_val_list.txt").write_text("00000001_000.png\n")
    (tmp_path / "test_list.txt").write_text("00000001_001.png\n00027426_000.png\n")
    done = _ingest(
        inputs,
        *("--input_prefix", "images/", "--input_csv", "Data_Entry_2017_v2020.csv"),
        *("--split_lists", f"{tmp_path}/train_val_list.txt", f"{tmp_path}/test_list.txt"),
        *("--output_dir", str(tmp_path / "out"), "--output_image_shape", str(SIZE), str(SIZE)),
        *("--max_bad_fraction", "1"),
    )
    assert done.returncode == 0, done.stderr
    leakage = json.loads((tmp_path / "out" / "_leakage.json").read_text())
    assert leakage["subjects"] == [{"subject": "1", "splits": ["test", "train_val"]}]
    assert "LEAKAGE: 1 subject(s) in more than one split: 1 (test/train_val)" in done.stdout
    written = duckdb_table(tmp_path / "out" / "tables.duckdb", "nih_cxr14_labels").to_pylist()
    assert sorted(row["path"] for row in written) == [
        "00000001_000.png",
        "00000001_001.png",
        "00027426_000.png",
    ]


def test_refused_finding_cells_are_quarantined(inputs: Path, tmp_path: Path) -> None:
    """An undeclared finding is ``unknown_code``, a blank cell ``bad_label_row``: named."""
    out = tmp_path / "out"
    done = _ingest(
        inputs,
        *("--input_prefix", "images/", "--input_csv", "bad_rows.csv"),
        *("--split_lists", "train_val_list.txt", "test_list.txt"),
        *("--output_dir", str(out), "--max_bad_fraction", "1"),
    )
    assert done.returncode == 0, done.stderr
    records = quarantine_records(str(out), {f"{inputs}/": ""})
    parsed = sorted(
        (r["source"], r["reason"], r["detail"])
        for r in records
        if r["source"].startswith("bad_rows.csv") and r["stage"] == "parse_labels"
    )
    assert [(source, reason) for source, reason, _ in parsed] == [
        ("bad_rows.csv:line 2", "unknown_code"),
        ("bad_rows.csv:line 3", "bad_label_row"),
    ]
    assert "Finding Labels: unknown value 'Flu' in 'Cardiomegaly|Flu'" in parsed[0][2]
    assert parsed[1][2].endswith("Finding Labels: blank")


@pytest.mark.parametrize(
    ("lists", "message"),
    [
        (("train_val_list.txt",), "--split_lists: no test_list.txt given"),
        (
            ("train_val_list.txt", "test_list.txt", "bad_rows.csv"),
            "bad_rows.csv: not a split list (test_list.txt, train_val_list.txt)",
        ),
        ((), "--split_lists is required"),
    ],
)
def test_split_lists_that_do_not_fit_the_declaration_are_a_usage_error(
    inputs: Path, tmp_path: Path, lists: tuple[str, ...], message: str
) -> None:
    flag = ("--split_lists", *lists) if lists else ()
    done = _ingest(
        inputs,
        *("--input_prefix", "images/", "--input_csv", "Data_Entry_2017_v2020.csv", *flag),
        *("--output_dir", str(tmp_path / "out")),
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert not (tmp_path / "out").exists()


def test_infer_and_evaluate_score_the_14_findings_of_the_test_list(
    ingested: Path, tmp_path: Path
) -> None:
    """A model with one output per finding; ``evaluate --split test`` scores the test list."""
    import keras

    keras.utils.set_random_seed(1)
    inputs = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    model = tmp_path / "team.keras"
    keras.Model(inputs, keras.layers.Dense(14)(x)).save(model)
    script = str(Path(sys.executable).parent / "datathon-etl")
    predicted = tmp_path / "predicted"
    done = subprocess.run(
        [
            *(script, "nih_cxr14", "infer", "--model", str(model)),
            *("--tfrecords", str(ingested / "tfrecords" / "test" / "*.tfrecord")),
            *("--output_dir", str(predicted)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    predictions = duckdb_table(predicted / "tables.duckdb", "nih_cxr14_predictions")
    assert predictions.column_names[4:] == [
        "atelectasis",
        "cardiomegaly",
        "effusion",
        "infiltration",
        "mass",
        "nodule",
        "pneumonia",
        "pneumothorax",
        "consolidation",
        "edema",
        "emphysema",
        "fibrosis",
        "pleural_thickening",
        "hernia",
    ]
    assert predictions.column("path").to_pylist() == ["00000004_000.png", "00027426_000.png"]
    board = tmp_path / "board.duckdb"
    done = subprocess.run(
        [
            *(script, "nih_cxr14", "evaluate", "--split", "test"),
            *("--labels_db", str(ingested / "tables.duckdb")),
            *("--submissions", f"team={predicted / 'tables.duckdb'}"),
            *("--bootstrap_samples", "10", "--min_positives", "1"),
            *("--output_table", f"{board}:board"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert "2 of 2 images of the test split" in done.stdout
    with duckdb.connect(str(board), read_only=True) as con:
        ranked = con.sql("SELECT label FROM board WHERE ranked AND label IS NOT NULL").fetchall()
    # Only findings with a positive and a negative among the 2 test images are ranked.
    assert sorted(label for (label,) in ranked) == ["mass", "nodule"]


def test_the_readme_shows_the_data_set_as_shipped() -> None:
    """README's "Declaring a data set" quotes both modules whole, so it cannot drift."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    package = Path(__file__).parent.parent / "datasets" / "nih_cxr14"
    for module in ("schema.py", "layout.py"):
        assert f"```python\n{(package / module).read_text()}```" in readme, module


def test_the_synthetic_sample_ingests_whole(tmp_path: Path) -> None:
    """`make demo-nih`'s sample: every image, row and list line written, nothing quarantined."""
    from datathon_etl.datasets.nih_cxr14.synthetic import write_sample
    from datathon_etl.generated.nih_cxr14.ingest import main

    sample = write_sample(tmp_path / "sample", patients=8, side=64)
    out = tmp_path / "out"
    code = main(
        [
            *("--input_prefix", f"{tmp_path}/sample/images/"),
            *("--input_csv", f"{tmp_path}/sample/Data_Entry_2017_v2020.csv"),
            *("--split_lists", f"{tmp_path}/sample/*_list.txt"),
            *("--output_dir", str(out), "--output_image_shape", "32", "32", "--no_card"),
        ]
    )
    assert code == 0
    stages = manifest_stages(str(out))["stages"]
    images = len(sample.images)
    for stage in ("images", "label_rows", "split_lists"):
        assert stages[stage] == {
            "input": images,
            "written": images,
            "skipped": 0,
            "quarantined": {},
        }, stage
    table = duckdb_table(out / "tables.duckdb", "nih_cxr14_labels").to_pylist()
    assert sorted(r["path"] for r in table if r["split"] == 1) == sorted(sample.test)
