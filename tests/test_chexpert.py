"""CheXpert through `datathon-etl chexpert ingest`: layout, codes, metadata, end to end.

The CheXpert CSVs may not be redistributed, so the rows here are synthetic,
in the release's exact format (header, ``Path`` with the
``CheXpert-v1.0-small/`` prefix, blank/1.0/0.0/-1.0 codes, blank ``AP/PA``
of lateral images). The images are a real chest X-ray (NIH ChestX-ray14's
``00000001_000.png``, ``tests/data/images/``) saved as JPEG under CheXpert's
names.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from PIL import Image

from datathon_etl.datasets.chexpert import layout
from datathon_etl.datasets.chexpert.schema import ImageKey, Split, View
from tests.pipeline_outputs import duckdb_table, manifest_stages, quarantine_records

DATA = Path(__file__).parent / "data"
HEADER = (
    "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,"
    "Lung Opacity,Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,"
    "Pleural Effusion,Pleural Other,Fracture,Support Devices"
)
PREFIX = "CheXpert-v1.0-small"
TRAIN = (
    f"{PREFIX}/train/patient00001/study1/view1_frontal.jpg,Female,68,Frontal,AP,1.0,,,,,,,,,0.0,,,,1.0",
    f"{PREFIX}/train/patient00002/study2/view1_frontal.jpg,Female,87,Frontal,AP,,,-1.0,1.0,,-1.0,-1.0,,-1.0,,-1.0,,1.0,",
    f"{PREFIX}/train/patient00002/study2/view2_lateral.jpg,Female,87,Lateral,,,,-1.0,1.0,,-1.0,-1.0,,-1.0,,-1.0,,1.0,",
    f"{PREFIX}/train/patient00003/study1/view1_frontal.jpg,Male,41,Frontal,AP,,,,,,1.0,,,,0.0,,,,",
    f"{PREFIX}/train/patient00004/study1/view1_frontal.jpg,Male,20,Frontal,PA,2.0,,,,,,,,,,,,,",
    f"{PREFIX}/train/patient00005/study1/view1_frontal.jpg,Other,33,Frontal,PA,1.0,,,,,,,,,,,,,",
)
VALID = (
    f"{PREFIX}/valid/patient64541/study1/view1_frontal.jpg,Male,73,Frontal,AP,0.0,1.0,1.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,1.0",
)


@pytest.mark.parametrize(
    ("path", "key"),
    [
        (
            f"{PREFIX}/train/patient00001/study1/view1_frontal.jpg",
            ImageKey(1, 1, 1, View.FRONTAL, Split.TRAIN),
        ),
        (
            "CheXpert-v1.0/valid/patient64541/study12/view2_lateral.jpg",
            ImageKey(64541, 12, 2, View.LATERAL, Split.VALID),
        ),
        (
            "train/patient00001/study1/view1_frontal.jpg",
            ImageKey(1, 1, 1, View.FRONTAL, Split.TRAIN),
        ),
    ],
)
def test_a_path_parses_with_or_without_the_release_folder(path: str, key: ImageKey) -> None:
    assert layout.parse_path(path) == key
    assert path.endswith(layout.format_path(key))


@pytest.mark.parametrize(
    "path",
    [
        f"{PREFIX}/train/patient1/study1/view1_frontal.jpg",  # not 5 digits
        f"{PREFIX}/train/patient00001/study01/view1_frontal.jpg",  # not canonical
        f"{PREFIX}/test/patient00001/study1/view1_frontal.jpg",
        f"{PREFIX}/train/patient00001/study1/view1_frontal.png",
    ],
)
def test_a_path_out_of_the_layout_is_refused(path: str) -> None:
    with pytest.raises(ValueError, match="chexpert: "):
        layout.parse_path(path)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("chexpert")
    xray = Image.open(DATA / "images" / "00000001_000.png").convert("L").resize((64, 64))
    for row in (*TRAIN, *VALID):
        image = root / row.split(",")[0]
        image.parent.mkdir(parents=True, exist_ok=True)
        xray.save(image, "JPEG")
    (root / PREFIX / "train.csv").write_text("\n".join((HEADER, *TRAIN)) + "\n")
    (root / PREFIX / "valid.csv").write_text("\n".join((HEADER, *VALID)) + "\n")
    done = subprocess.run(
        [
            *(str(Path(sys.executable).parent / "datathon-etl"), "chexpert", "ingest"),
            *("--input_prefix", f"{PREFIX}/", "--path_match_regex", r".*\.jpg"),
            *("--input_csv", f"{PREFIX}/train.csv", f"{PREFIX}/valid.csv"),
            *("--output_dir", "out", "--output_tfrecord_dir", "out/tfrecords"),
            *("--output_image_shape", "32", "32", "--max_bad_fraction", "1"),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return root / "out"


def test_codes_metadata_and_keys_are_read_as_declared(ingested: Path) -> None:
    table = duckdb_table(ingested / "tables.duckdb", "chexpert_labels").to_pylist()
    found = {
        row["path"]: (
            row["split"],
            row["view"],
            row["sex"],
            row["age"],
            row["projection"],
            row["no_finding"],
            row["cardiomegaly"],
            row["pneumothorax"],
            row["support_devices"],
        )
        for row in table
    }
    # Finding codes: 0 not mentioned, 1 negative, 2 uncertain, 3 positive.
    assert found == {
        "train/patient00001/study1/view1_frontal.jpg": (0, 0, 1, 68, 0, 3, 0, 1, 3),
        "train/patient00002/study2/view1_frontal.jpg": (0, 0, 1, 87, 0, 0, 2, 0, 0),
        "train/patient00002/study2/view2_lateral.jpg": (0, 1, 1, 87, None, 0, 2, 0, 0),
        "train/patient00003/study1/view1_frontal.jpg": (0, 0, 0, 41, 0, 0, 0, 1, 0),
        "valid/patient64541/study1/view1_frontal.jpg": (1, 0, 0, 73, 0, 1, 3, 1, 3),
    }
    folders = sorted(
        str(p.parent.relative_to(ingested / "tfrecords"))
        for p in (ingested / "tfrecords").glob("*/*/*.tfrecord")
    )
    assert folders == ["train/frontal", "train/lateral", "valid/frontal", "valid/lateral"]


def test_unknown_codes_are_quarantined_and_counted(ingested: Path) -> None:
    records = quarantine_records(str(ingested), {})
    refused = sorted((r["path"], r["stage"], r["reason"]) for r in records)
    # Each row's image is refused for the row's own reason, naming the row.
    assert refused == [
        (f"{PREFIX}/train/patient00004/study1/view1_frontal.jpg", "parse_labels", "unknown_code"),
        (f"{PREFIX}/train/patient00005/study1/view1_frontal.jpg", "parse_labels", "unknown_code"),
        ("train/patient00004/study1/view1_frontal.jpg", "join", "unknown_code"),
        ("train/patient00005/study1/view1_frontal.jpg", "join", "unknown_code"),
    ]
    joined = [r["detail"] for r in records if r["stage"] == "join"]
    assert all(d.startswith("its label row ") and " was refused: " in d for d in joined)
    details = " ".join(r["detail"] for r in records)
    assert "No Finding: unknown CheXpert code '2.0'" in details
    assert "Sex: unknown sex 'Other'" in details
    stages = manifest_stages(str(ingested))["stages"]
    assert stages["label_rows"]["input"] == len(TRAIN) + len(VALID)
    assert stages["label_rows"]["written"] == 5
    assert stages["images"]["written"] == 5


def test_infer_and_evaluate_score_the_14_labels(ingested: Path, tmp_path: Path) -> None:
    """A 14-output model predicts the train split; evaluate scores it, uncertain as positive."""
    import keras

    keras.utils.set_random_seed(1)
    inputs = keras.Input((32, 32, 1))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    model = tmp_path / "team.keras"
    keras.Model(inputs, keras.layers.Dense(14)(x)).save(model)
    script = str(Path(sys.executable).parent / "datathon-etl")
    predicted = tmp_path / "predicted"
    done = subprocess.run(
        [
            *(script, "chexpert", "infer", "--model", str(model)),
            *("--tfrecords", str(ingested / "tfrecords" / "train" / "*" / "*.tfrecord")),
            *("--output_dir", str(predicted)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    predictions = duckdb_table(predicted / "tables.duckdb", "chexpert_predictions")
    assert predictions.column_names[:6] == ["patient", "study", "image", "view", "split", "path"]
    assert predictions.column_names[6:] == [
        "no_finding",
        "enlarged_cardiomediastinum",
        "cardiomegaly",
        "lung_opacity",
        "lung_lesion",
        "edema",
        "consolidation",
        "pneumonia",
        "atelectasis",
        "pneumothorax",
        "pleural_effusion",
        "pleural_other",
        "fracture",
        "support_devices",
    ]
    board = tmp_path / "board.duckdb"
    done = subprocess.run(
        [
            *(script, "chexpert", "evaluate", "--split", "train", "--uncertain", "positive"),
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
    assert "4 of 4 images of the train split" in done.stdout
    with duckdb.connect(str(board), read_only=True) as con:
        ranked = con.sql("SELECT label FROM board WHERE ranked AND label IS NOT NULL").fetchall()
    # Labels with a positive (or uncertain) and a negative image among the 4.
    assert sorted(label for (label,) in ranked) == [
        "atelectasis",
        "cardiomegaly",
        "consolidation",
        "edema",
        "fracture",
        "lung_opacity",
        "no_finding",
        "pleural_effusion",
        "support_devices",
    ]


def test_the_synthetic_sample_ingests_whole(tmp_path: Path) -> None:
    """`make demo-chexpert`'s sample: the release's header, every image and row written."""
    from datathon_etl.datasets.chexpert import synthetic
    from datathon_etl.generated.chexpert.ingest import main

    assert synthetic.HEADER == HEADER
    paths = synthetic.write_sample(tmp_path, patients=6, side=64)
    out = tmp_path / "out"
    folder = tmp_path / synthetic.FOLDER
    code = main(
        [
            *("--input_prefix", f"{folder}/", "--path_match_regex", r".*\.jpg"),
            *("--input_csv", f"{folder}/train.csv", f"{folder}/valid.csv"),
            *("--output_dir", str(out), "--output_image_shape", "32", "32", "--no_card"),
        ]
    )
    assert code == 0
    stages = manifest_stages(str(out))["stages"]
    written = {"written": len(paths), "quarantined": {}}
    # train.csv and valid.csv sit among the images: --path_match_regex skips them.
    assert stages["images"] == {"input": len(paths) + 2, "skipped": 2, **written}
    assert stages["label_rows"] == {"input": len(paths), "skipped": 0, **written}
