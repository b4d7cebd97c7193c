"""The PyTorch example on the demo's sample: trained on the Parquet shards, scored as a team.

The sample and the ingestion are `make demo`'s (`demo.ingest_args`, which
writes the Parquet shards). The example's predictions file must be what
``evaluate`` ranks, and its ONNX model must predict the logits the file
holds through ``infer`` (onnxruntime, channels first), row by row.
"""

from __future__ import annotations

import importlib.util
import runpy
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from datathon_etl.datasets.mimic_cxr.demo import ingest_args
from datathon_etl.datasets.mimic_cxr.synthetic import write_sample
from datathon_etl.framework.inference.preprocess import scale_to_unit_channels_first
from datathon_etl.generated.mimic_cxr import arrow_schema, rows
from datathon_etl.generated.mimic_cxr.evaluate import main as evaluate
from datathon_etl.generated.mimic_cxr.infer import main as infer
from datathon_etl.generated.mimic_cxr.ingest import main as ingest
from tests.emulators.install import in_ci
from tests.pipeline_outputs import duckdb_table

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "train_mimic_cxr_torch.py"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make demo`'s sample (100 images, 4 at full size) ingested as the demo does."""
    if importlib.util.find_spec("torch") is None:
        message = "torch is not installed (`make test` installs the torch extra)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("demo")
    sample = write_sample(root / "sample", images=100, full_size=4)
    out = root / "ingest"
    assert ingest(ingest_args(sample.tars[0].parent, out, workers=2)) == 0
    return out


@pytest.fixture(scope="module")
def trained(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The example run: one epoch on train; (its predictions of valid, its ONNX model)."""
    folder = tmp_path_factory.mktemp("team")
    predictions, model = folder / "teams" / "torch_cnn.parquet", folder / "torch_cnn.onnx"
    predictions.parent.mkdir()
    argv = ["--train", str(demo / "parquet" / "train" / "*" / "*.parquet")]
    argv += ["--predict", str(demo / "parquet" / "valid" / "*" / "*.parquet")]
    argv += ["--predictions_out", str(predictions), "--onnx_out", str(model), "--width", "4"]
    main: Any = runpy.run_path(str(EXAMPLE))["main"]
    assert main(argv) == 0
    return predictions, model


def test_the_predictions_file_has_each_valid_image_once(demo, trained):
    """The predictions schema exactly, one row per image of the valid split."""
    predictions, _ = trained
    table = pq.read_table(predictions)
    assert table.schema.names == arrow_schema.PREDICTIONS.names
    assert table.schema.types == arrow_schema.PREDICTIONS.types
    with duckdb.connect(str(demo / "tables.duckdb"), read_only=True) as con:
        valid = con.execute("SELECT path FROM mimic_cxr_labels WHERE dataset = 1").fetchall()
    assert sorted(table.column("path").to_pylist()) == sorted(path for (path,) in valid)


def test_evaluate_ranks_the_predictions_file(demo, trained, capsys):
    """``evaluate`` scores the file as a team, every valid image covered, and ranks it."""
    predictions, _ = trained
    labels = demo / "tables.duckdb"
    command = ["--submissions", str(predictions.parent), "--labels_db", str(labels)]
    assert evaluate([*command, "--split", "valid", "--min_positives", "2"]) == 0
    out = capsys.readouterr().out
    valid = len(pq.read_table(predictions))
    assert f"{valid} of {valid} images of the valid split (100.0%)" in out
    with duckdb.connect(str(labels), read_only=True) as con:
        ranked = con.execute(
            "SELECT team, rank, predicted, split_images FROM mimic_cxr_leaderboard "
            "WHERE label IS NULL"
        ).fetchall()
    assert ranked == [("torch_cnn", 1, valid, valid)]


def test_the_onnx_model_predicts_the_file_through_infer(demo, trained, tmp_path):
    """``infer`` runs the exported model (channels first): the file's logits, row by row."""
    predictions, model = trained
    normalize = f"{scale_to_unit_channels_first.__module__}:scale_to_unit_channels_first"
    argv = ["--input_tfrecord_pattern", str(demo / "tfrecords" / "valid" / "*" / "*.tfrecord")]
    argv += ["--keras_model", str(model), "--normalize", normalize]
    assert infer([*argv, "--output_dir", str(tmp_path)]) == 0
    inferred = duckdb_table(tmp_path / "tables.duckdb", "mimic_cxr_predictions").to_pylist()
    written = pq.read_table(predictions).sort_by("path").to_pylist()
    assert [row["path"] for row in inferred] == [row["path"] for row in written]
    for found, expected in zip(inferred, written, strict=True):
        assert {n: found[n] for n in rows.ID_COLUMNS} == {n: expected[n] for n in rows.ID_COLUMNS}
        # Two JPEG decoders, PIL's (datasets) and TensorFlow's (infer), put up to
        # half the pixels 1 to 5 levels apart; here that moves a logit by < 1e-4.
        logits = [expected[name] for name in rows.TARGET_COLUMNS]
        assert [found[name] for name in rows.TARGET_COLUMNS] == pytest.approx(
            logits, rel=0, abs=1e-3
        ), expected["path"]
