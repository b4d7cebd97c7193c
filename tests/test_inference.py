"""Batched Keras inference into a predictions table, on TFRecords from a real ingestion."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import apache_beam as beam
import attrs
import duckdb
import keras
import numpy as np
import numpy.typing as npt
import pytest
import tensorflow as tf
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from datathon_etl.datasets.mimic_cxr.parsing import format_path
from datathon_etl.datasets.mimic_cxr.schema import Finding
from datathon_etl.datasets.mimic_cxr.synthetic import write_sample
from datathon_etl.framework.evaluate import UncertainPolicy
from datathon_etl.framework.inference import (
    InferenceJob,
    build_pipeline,
    decode_pixels,
    load_keras_model,
    read_signature,
    scale_to_unit,
)
from datathon_etl.framework.inference.preprocess import record_identity
from datathon_etl.framework.manifest import Manifest
from datathon_etl.framework.quarantine import Quarantined, Reason, Stage
from datathon_etl.framework.run_layout import RunLayout
from datathon_etl.framework.run_records import read_tallies
from datathon_etl.framework.synthetic import synthetic_cxr_jpeg
from datathon_etl.generated.mimic_cxr import features, rows
from datathon_etl.generated.mimic_cxr.infer import SPEC
from datathon_etl.generated.mimic_cxr.infer import main as infer
from datathon_etl.generated.mimic_cxr.ingest import main as ingest
from tests.emulators import GcsHandle

SIZE = 64
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "train_mimic_cxr.py"


@pytest.fixture(scope="module")
def tfrecords(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """TFRecord files of a real ingestion of a synthetic sample (28 images, 64x64)."""
    root = tmp_path_factory.mktemp("ingest")
    sample = write_sample(root / "sample", images=28, full_size=0)
    out = root / "out"
    code = ingest(
        [
            "--input_tars",
            str(sample.tars[0].parent / "*.tar"),
            "--input_csv",
            str(sample.csvs[0].parent / "*.csv.gz"),
            "--output_dir",
            str(out),
            "--output_tfrecord_dir",
            str(out / "tfrecords"),
            "--output_image_shape",
            str(SIZE),
            str(SIZE),
        ]
    )
    assert code == 0
    files = sorted((out / "tfrecords").glob("*/*/*.tfrecord"))
    assert files
    return files


def _records(files: list[Path]) -> list[bytes]:
    return [r.numpy() for r in tf.data.TFRecordDataset([str(f) for f in files])]


def _tiny_model(outputs: int = len(rows.TARGET_COLUMNS)) -> keras.Model:
    keras.utils.set_random_seed(1)
    inputs = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(outputs)(x))


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    _tiny_model().save(path)
    return path


def _expected(
    files: list[Path], model_path: Path, normalize: Any = scale_to_unit
) -> dict[str, npt.NDArray[Any]]:
    """Path -> ``model.predict`` of the same decoded, normalised image."""
    examples = [features.decode(r) for r in _records(files)]
    inputs = np.stack([normalize(decode_pixels(e.image)) for e in examples])
    outputs = load_keras_model(str(model_path)).predict(inputs, batch_size=8, verbose=0)
    return {e.path: o for e, o in zip(examples, outputs, strict=True)}


def _table(database: Path, table: str = "mimic_cxr_predictions") -> list[dict[str, Any]]:
    with duckdb.connect(str(database), read_only=True) as con:
        result: list[dict[str, Any]] = (
            con.sql(f"SELECT * FROM {table}").to_arrow_table().to_pylist()
        )
    return result


def _assert_predictions(found: list[dict[str, Any]], expected: dict[str, npt.NDArray[Any]]) -> None:
    assert sorted(r["path"] for r in found) == sorted(expected)
    for row in found:
        values = [row[name] for name in rows.TARGET_COLUMNS]
        np.testing.assert_allclose(values, expected[row["path"]], rtol=1e-5, atol=1e-6)


def _quarantine(out: Path) -> list[Quarantined]:
    lines = [ln for f in (out / "_quarantine").glob("*.jsonl") for ln in f.read_text().splitlines()]
    return [Quarantined.from_json(line) for line in lines]


def test_predictions_equal_model_predict_row_by_row(tfrecords, model_file, tmp_path):
    """Every record predicted once, ids from the example, logits equal to model.predict."""
    out = tmp_path / "out"
    argv = ["--tfrecords", str(tfrecords[0].parents[2] / "*" / "*" / "*.tfrecord")]
    argv += ["--model", str(model_file), "--output_dir", str(out), "--batch_size", "8"]
    assert infer(argv) == 0
    found = _table(out / "tables.duckdb")
    _assert_predictions(found, _expected(tfrecords, model_file))
    by_path = {row["path"]: row for row in found}
    for record in _records(tfrecords):
        ids = rows.ids_row(features.decode(record))
        assert {name: by_path[ids["path"]][name] for name in rows.ID_COLUMNS} == ids
    manifest = Manifest.read(str(out / "_manifest.json"))
    manifest.check()
    assert manifest.stages["examples"].input == manifest.stages["examples"].written == len(found)
    assert manifest.parameters["keras_model"] == str(model_file)


def test_saved_model_and_h5_predict_the_same(tfrecords, model_file, tmp_path):
    """The same network as a SavedModel folder runs in the pipeline; as .h5 it loads the same."""
    model = keras.models.load_model(model_file)
    saved_model = tmp_path / "saved_model"
    model.export(str(saved_model), verbose=False)
    model.save(tmp_path / "tiny.h5")
    x = np.random.default_rng(0).random((3, SIZE, SIZE, 1), dtype=np.float32)
    for other in (saved_model, tmp_path / "tiny.h5"):
        np.testing.assert_allclose(
            load_keras_model(str(other)).predict_on_batch(x), model.predict_on_batch(x), rtol=1e-5
        )
    out = tmp_path / "out"
    pattern = str(tfrecords[0].parents[2] / "**" / "*.tfrecord")
    argv = ["--input_tfrecord_pattern", pattern, "--keras_model", str(saved_model)]
    argv += ["--output_dir", str(out), "--predictions_table", f"{tmp_path / 'p.duckdb'}:team_a"]
    assert infer(argv) == 0
    _assert_predictions(_table(tmp_path / "p.duckdb", "team_a"), _expected(tfrecords, model_file))


def _halve(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    return pixels.astype(np.float32) / np.float32(510)


def test_model_is_loaded_once_and_shared_by_threads(tfrecords, model_file, tmp_path):
    """Two worker threads, batches of 4: one model load (Beam's metric), batched inference."""
    layout = RunLayout(str(tmp_path / "out"))
    job = InferenceJob(
        tfrecords=tuple(str(f) for f in tfrecords),
        model=str(model_file),
        signature=read_signature(SPEC, str(model_file)),
        layout=layout,
        table="mimic_cxr_predictions",
        batch_size=4,
        normalize=_halve,
    )
    options = PipelineOptions(
        ["--direct_running_mode", "multi_threading", "--direct_num_workers", "2"]
    )
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, SPEC, job)
    result = pipeline.run()
    result.wait_until_finish()

    def metric(name: str) -> Any:
        query = result.metrics().query(MetricsFilter().with_name(name))
        (found,) = query["counters"] or query["distributions"]
        return found.committed

    total = len(_records(tfrecords))
    assert metric("load_model_latency_milli_secs").count == 1
    assert metric("num_inferences") == total
    batch_sizes = metric("inference_request_batch_size")
    assert batch_sizes.max <= 4
    assert batch_sizes.count < total  # batched, not one at a time
    found = _table(tmp_path / "out" / "tables.duckdb")
    _assert_predictions(found, _expected(tfrecords, model_file, normalize=_halve))
    assert (
        sum(t.count for t in read_tallies(layout.tallies_prefix) if t.outcome == "input") == total
    )


def test_a_model_of_the_wrong_width_is_refused_before_any_row(tfrecords, tmp_path, capsys):
    """3 outputs for 14 labels: exit 2 with the row mapper's message; the table is untouched."""
    wrong = tmp_path / "wrong.keras"
    _tiny_model(outputs=3).save(wrong)
    database = tmp_path / "p.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute("CREATE TABLE team_a AS SELECT 'kept' AS sentinel")
    out = tmp_path / "out"
    argv = ["--tfrecords", str(tfrecords[0]), "--model", str(wrong), "--output_dir", str(out)]
    assert infer([*argv, "--predictions_table", f"{database}:team_a"]) == 2
    err = capsys.readouterr().err
    assert (
        "mimic_cxr: the model outputs 3 values per image, but the dataset has 14 target labels"
        in err
    )
    assert _table(database, "team_a") == [{"sentinel": "kept"}]
    assert not out.exists()


def _example_bytes(image: bytes, template: bytes, patient: int) -> tuple[str, bytes]:
    """An example like ``template`` for another patient, with ``image``: (path, record)."""
    example = features.decode(template)
    key = attrs.evolve(example.key, patient=patient)
    changed = attrs.evolve(example, image=image, path=format_path(key), key=key)
    return changed.path, features.encode(changed)


def test_corrupt_records_are_quarantined_and_the_rest_finish(tfrecords, model_file, tmp_path):
    """Garbage, a truncated JPEG and a wrong-size image among good records: three dead letters."""
    good = _records(tfrecords)
    truncated_path, truncated = _example_bytes(
        features.decode(good[0]).image[:300], good[0], 90_000_001
    )
    small_path, small = _example_bytes(synthetic_cxr_jpeg(3, 32, 32), good[0], 90_000_002)
    mixed = tmp_path / "mixed.tfrecord"
    with tf.io.TFRecordWriter(str(mixed)) as writer:
        for record in [*good[:5], b"not an example", truncated, *good[5:], small]:
            writer.write(record)
    out = tmp_path / "out"
    argv = ["--input_tfrecord_pattern", str(mixed), "--keras_model", str(model_file)]
    assert infer([*argv, "--output_dir", str(out)]) == 1  # --max_bad_fraction 0

    refused = {q.path: q for q in _quarantine(out)}
    garbage_path = record_identity(b"not an example")
    assert set(refused) == {garbage_path, truncated_path, small_path}
    assert all(q.stage is Stage.INFER and q.reason is Reason.BAD_EXAMPLE for q in refused.values())
    assert all(q.source == str(mixed) for q in refused.values())
    assert "not a mimic_cxr example" in refused[garbage_path].detail
    assert f"{truncated_path}: jpg_bytes: InvalidArgumentError" in refused[truncated_path].detail
    assert f"the input is 32x32x1, the model takes {SIZE}x{SIZE}x1" in refused[small_path].detail
    _assert_predictions(_table(out / "tables.duckdb"), _expected(tfrecords, model_file))
    stage = Manifest.read(str(out / "_manifest.json")).stages["examples"]
    assert (stage.input, stage.written, dict(stage.quarantined)) == (
        len(good) + 3,
        len(good),
        {"bad_example": 3},
    )


def test_a_failing_batch_quarantines_its_records(tfrecords, tmp_path):
    """A SavedModel that fails on every batch: each record is dead-lettered, none predicted."""

    class Failing(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, SIZE, SIZE, 1], tf.float32)])
        def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            tf.debugging.assert_less(tf.reduce_max(x), -1.0, message="pixels out of range")
            return {"logits": tf.zeros([tf.shape(x)[0], len(rows.TARGET_COLUMNS)])}

    module = Failing()
    model = tmp_path / "failing"
    tf.saved_model.save(module, str(model), signatures={"serving_default": module.serve})
    out = tmp_path / "out"
    argv = ["--tfrecords", str(tfrecords[0]), "--model", str(model), "--output_dir", str(out)]
    assert infer(argv) == 1
    paths = [features.decode(r).path for r in _records(tfrecords[:1])]
    refused = _quarantine(out)
    assert sorted(q.path for q in refused) == sorted(paths)
    assert all("the model failed on this record's batch" in q.detail for q in refused)
    assert all("pixels out of range" in q.detail for q in refused)
    assert _table(out / "tables.duckdb") == []
    Manifest.read(str(out / "_manifest.json")).check()


def _upload(local: Path, uri: str) -> None:
    with FileSystems.create(uri) as f:
        f.write(local.read_bytes())


def test_tfrecords_and_models_on_gcs(gcs: GcsHandle, tfrecords, model_file, tmp_path):
    """gs:// TFRecords and a gs:// .keras model; a gs:// SavedModel folder loads the same."""
    bucket = gcs.bucket()
    for path in tfrecords:
        _upload(
            path, f"{bucket}/tfrecords/{path.parent.parent.name}/{path.parent.name}/{path.name}"
        )
    _upload(model_file, f"{bucket}/models/tiny.keras")
    saved_model = tmp_path / "saved_model"
    model = keras.models.load_model(model_file)
    model.export(str(saved_model), verbose=False)
    for path in saved_model.rglob("*"):
        if path.is_file():
            _upload(path, f"{bucket}/models/saved/{path.relative_to(saved_model).as_posix()}")
    x = np.random.default_rng(0).random((2, SIZE, SIZE, 1), dtype=np.float32)
    np.testing.assert_allclose(
        load_keras_model(f"{bucket}/models/saved").predict_on_batch(x),
        model.predict_on_batch(x),
        rtol=1e-5,
    )
    out = tmp_path / "out"
    argv = ["--tfrecords", f"{bucket}/tfrecords/*/*/*.tfrecord", "--output_dir", str(out)]
    assert infer([*argv, "--model", f"{bucket}/models/tiny.keras"]) == 0
    _assert_predictions(_table(out / "tables.duckdb"), _expected(tfrecords, model_file))


def test_usage_errors_run_nothing(tfrecords, model_file, tmp_path, capsys):
    """Bad inputs and contradictory flags: exit 2, one line each."""
    base = ["--model", str(model_file), "--output_dir", str(tmp_path / "out")]
    cases = {
        "matches no file": ["--tfrecords", str(tmp_path / "none-*.tfrecord")],
        "give one": [
            "--tfrecords",
            str(tfrecords[0]),
            "--predictions_table",
            "a",
            "--output_table",
            "b",
        ],
        "--normalize": ["--tfrecords", str(tfrecords[0]), "--normalize", "json:no_such"],
        "--batch_size must be positive": ["--tfrecords", str(tfrecords[0]), "--batch_size", "0"],
    }
    for message, argv in cases.items():
        assert infer([*argv, *base]) == 2, message
        assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    remote = ["--tfrecords", str(tfrecords[0]), "--model", str(model_file)]
    assert infer([*remote, "--output_dir", "gs://bucket/out"]) == 2
    assert "a DuckDB table is a local file and cannot live on gs://" in capsys.readouterr().err
    missing = ["--tfrecords", str(tfrecords[0]), "--model", str(tmp_path / "none.keras")]
    assert infer([*missing, "--output_dir", str(tmp_path / "out")]) == 2
    assert "none.keras: no such model file or SavedModel folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_output_folders_are_checked_like_the_other_commands(
    tfrecords, model_file, tmp_path, capsys
):
    """Issue 17: a file in the folder's place, or a folder among the inputs: one line, exit 2."""
    argv = ["--tfrecords", str(tfrecords[0]), "--model", str(model_file), "--output_dir"]
    (tmp_path / "a-file").write_text("not a folder")
    assert infer([*argv, str(tmp_path / "a-file")]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err
    assert len(err.strip().splitlines()) == 1
    # dir/* reads every .tfrecord below dir, so records written there would be read back.
    every_shard = ["--tfrecords", f"{tfrecords[0].parent.parent}/*", *argv[2:]]
    inside = tfrecords[0].parent / "infer-out"
    assert infer([*every_shard, str(inside)]) == 2
    err = capsys.readouterr().err
    assert "overlaps --input_tfrecord_pattern" in err or "overlaps --keras_model" in err, err
    assert not inside.exists()


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (UncertainPolicy.IGNORE, [0.0, 0.0, -1.0, 1.0]),
        (UncertainPolicy.NEGATIVE, [0.0, 0.0, 0.0, 1.0]),
        (UncertainPolicy.POSITIVE, [0.0, 0.0, 1.0, 1.0]),
    ],
)
def test_training_targets_follow_the_uncertainty_policy(policy, expected):
    """Not mentioned and negative -> 0, positive -> 1, uncertain as the flag says (-1: ignored)."""
    targets = runpy.run_path(str(EXAMPLES))["targets"]
    codes = tf.constant([int(code) for code in Finding], tf.int64)
    assert targets(codes, policy).numpy().tolist() == expected


def test_the_training_example_saves_a_model_infer_accepts(tfrecords, tmp_path, capsys):
    """One short epoch on the TFRecords; the saved .keras model fits the dataset."""
    model = tmp_path / "trained.keras"
    train = runpy.run_path(str(EXAMPLES))["main"]
    pattern = str(tfrecords[0].parents[2] / "*" / "*" / "*.tfrecord")
    argv = ["--tfrecords", pattern, "--model_out", str(model), "--uncertain", "positive"]
    assert train([*argv, "--epochs", "1", "--batch_size", "8", "--width", "4"]) == 0
    signature = read_signature(SPEC, str(model))
    assert (signature.input_shape, signature.output_width) == ((SIZE, SIZE, 1), 14)
    assert f"saved to {model}" in capsys.readouterr().out


def _to_onnx(model_path: Path, target: Path, *, channels_first: bool) -> Path:
    """The Keras model converted with tf2onnx; channels first as PyTorch's image models take."""
    import tf2onnx

    model = keras.models.load_model(model_path)
    shape = (None, 1, SIZE, SIZE) if channels_first else (None, SIZE, SIZE, 1)

    def serve(x: tf.Tensor) -> tf.Tensor:
        return model(tf.transpose(x, [0, 2, 3, 1]) if channels_first else x, training=False)

    spec = (tf.TensorSpec(shape, tf.float32, name="image"),)
    tf2onnx.convert.from_function(
        tf.function(serve), input_signature=spec, opset=17, output_path=str(target)
    )
    return target


@pytest.mark.parametrize(
    ("channels_first", "normalize"),
    [
        (False, []),
        (True, ["--normalize", f"{scale_to_unit.__module__}:scale_to_unit_channels_first"]),
    ],
    ids=["channels last", "channels first (PyTorch's layout)"],
)
def test_an_onnx_model_predicts_as_the_keras_model_it_came_from(
    tfrecords, model_file, tmp_path, channels_first, normalize
):
    """Run by onnxruntime through infer: the same logits as Keras, row by row."""
    onnx_model = _to_onnx(model_file, tmp_path / "team.onnx", channels_first=channels_first)
    out = tmp_path / "out"
    argv = ["--tfrecords", str(tfrecords[0].parents[2] / "*" / "*" / "*.tfrecord")]
    argv += ["--model", str(onnx_model), "--output_dir", str(out), "--batch_size", "8"]
    assert infer([*argv, *normalize]) == 0
    _assert_predictions(_table(out / "tables.duckdb"), _expected(tfrecords, model_file))
    Manifest.read(str(out / "_manifest.json")).check()
