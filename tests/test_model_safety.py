"""Team models are untrusted: a model that could touch files or run Python is refused unrun."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from datathon_etl.datasets.mimic_cxr.parsing import format_path
from datathon_etl.datasets.mimic_cxr.schema import Finding, ImageKey, Labels, Split, View
from datathon_etl.framework.inference import load_keras_model
from datathon_etl.framework.inference.saved_model_check import UnsafeModelError, check_saved_model
from datathon_etl.framework.schema.example import Example
from datathon_etl.framework.synthetic import synthetic_cxr_jpeg
from datathon_etl.generated.mimic_cxr import features, rows
from datathon_etl.generated.mimic_cxr.infer import main as infer

SIZE = 8
WIDTH = len(rows.TARGET_COLUMNS)

Attack = Callable[[tf.Tensor, str], tf.Tensor]
"""(image batch, a path the attack targets) -> logits [batch, WIDTH]."""


def _zeros(x: tf.Tensor) -> tf.Tensor:
    return tf.zeros([tf.shape(x)[0], WIDTH])


def _read_file(x: tf.Tensor, target: str) -> tf.Tensor:
    # The file's length leaks into every logit.
    return _zeros(x) + tf.cast(tf.strings.length(tf.io.read_file(target)), tf.float32)


def _write_file(x: tf.Tensor, target: str) -> tf.Tensor:
    with tf.control_dependencies([tf.io.write_file(target, "written by a team's model")]):
        return _zeros(x)


def _matching_files(x: tf.Tensor, target: str) -> tf.Tensor:
    # Find the organiser's files, then overwrite the first.
    found = tf.io.matching_files(str(Path(target).parent / "*.duckdb"))
    with tf.control_dependencies([tf.io.write_file(found[0], "overwritten")]):
        return _zeros(x)


def _python(x: tf.Tensor, target: str) -> tf.Tensor:
    return tf.py_function(lambda t: t * 0.0, [_zeros(x)], tf.float32)


def _nested_read(x: tf.Tensor, target: str) -> tf.Tensor:
    # Hidden one function deeper, behind a condition that is always true.
    @tf.function
    def inner(t: tf.Tensor) -> tf.Tensor:
        return tf.cond(
            tf.reduce_sum(t) >= 0,
            lambda: _read_file(t, target),
            lambda: _zeros(t),
        )

    return inner(x)


def _save(attack: Attack, target: str, folder: Path) -> Path:
    class Team(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, SIZE, SIZE, 1], tf.float32)])
        def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"logits": attack(x, target)}

    module = Team()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return folder


@pytest.fixture
def tfrecord(tmp_path: Path) -> Path:
    """One real record of the dataset's shape, so a model that is not refused would run."""
    key = ImageKey(patient=10000001, study=1, image=1, view=View.FRONTAL, dataset=Split.VALID)
    labels = Labels(**dict.fromkeys(rows.LABEL_COLUMNS, Finding.POSITIVE))
    example = Example(
        image=synthetic_cxr_jpeg(1, SIZE, SIZE), path=format_path(key), key=key, labels=labels
    )
    path = tmp_path / "data.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(features.encode(example))
    return path


@pytest.mark.parametrize(
    ("attack", "op"),
    [
        (_read_file, "ReadFile"),
        (_write_file, "WriteFile"),
        (_matching_files, "MatchingFiles"),
        (_python, "EagerPyFunc"),
        (_nested_read, "ReadFile"),
    ],
)
def test_a_saved_model_that_touches_files_or_runs_python_is_refused(
    attack, op, tfrecord, tmp_path, capsys
):
    """Exit 2 with one line naming the op; the organiser's files unchanged; nothing written."""
    organiser = tmp_path / "organiser"
    organiser.mkdir()
    labels = organiser / "tables.duckdb"
    labels.write_bytes(b"the organiser's labels")
    target = organiser / "secret.txt" if attack in (_read_file, _nested_read) else labels
    if target != labels:
        target.write_text("secret")
    written = tmp_path / "team-was-here.txt"
    model = _save(attack, str(written if attack is _write_file else target), tmp_path / "model")
    out = tmp_path / "out"
    argv = ["--tfrecords", str(tfrecord), "--model", str(model), "--output_dir", str(out)]
    assert infer(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert f"refused: op {op} (in function" in err
    assert "--trusted_model" in err
    assert labels.read_bytes() == b"the organiser's labels"
    assert not written.exists()
    assert not out.exists()
    with pytest.raises(UnsafeModelError, match=op):
        check_saved_model(str(model))


def test_trusted_model_runs_what_it_holds(tfrecord, tmp_path):
    """--trusted_model skips the check: the attack runs (what the flag risks, documented)."""
    written = tmp_path / "team-was-here.txt"
    model = _save(_write_file, str(written), tmp_path / "model")
    out = tmp_path / "out"
    argv = ["--tfrecords", str(tfrecord), "--model", str(model), "--output_dir", str(out)]
    assert infer([*argv, "--trusted_model"]) == 0
    assert written.read_text() == "written by a team's model"


def _tiny_keras() -> keras.Model:
    keras.utils.set_random_seed(3)
    inputs = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Conv2D(2, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(WIDTH)(x))


def test_a_pure_saved_model_loads_and_predicts(tmp_path):
    """Keras' export (variables, checkpoint functions) passes the check and predicts as Keras."""
    model = _tiny_keras()
    model.export(str(tmp_path / "saved"), verbose=False)
    check_saved_model(str(tmp_path / "saved"))
    x = np.random.default_rng(0).random((3, SIZE, SIZE, 1), dtype=np.float32)
    np.testing.assert_allclose(
        load_keras_model(str(tmp_path / "saved")).predict_on_batch(x),
        model.predict_on_batch(x),
        rtol=1e-5,
    )


def _rewrite_config(source: Path, target: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as copy:
        for name in original.namelist():
            data = original.read(name)
            if name == "config.json":
                config = json.loads(data)
                change(config)
                data = json.dumps(config).encode()
            copy.writestr(name, data)
    return target


def _drop_layer_names(config: dict[str, Any]) -> None:
    for layer in config["config"]["layers"]:
        layer.pop("name", None)
        layer["config"].pop("name", None)


def _lambda_model(path: Path) -> Path:
    inputs = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inputs, keras.layers.Dense(WIDTH)(x)).save(path)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda d: _rewrite_config(_save_keras(d), d / "nameless.keras", _drop_layer_names),
            "cannot load the Keras model: KeyError",
        ),
        (lambda d: _lambda_model(d / "lambda.keras"), "cannot load the Keras model"),
        (lambda d: _lambda_model(d / "lambda.h5"), "cannot load the Keras model"),
        (lambda d: _write_bytes(d / "garbage.keras", b"not a zip"), "cannot load the Keras model"),
    ],
    ids=["layer without a name", "Lambda layer (safe mode)", "Lambda layer in .h5", "not a zip"],
)
def test_a_bad_keras_file_is_one_line(make, message, tfrecord, tmp_path, capsys):
    """Malformed or unsafe .keras files: exit 2 with one line, never a traceback."""
    model = make(tmp_path)
    out = tmp_path / "out"
    argv = ["--tfrecords", str(tfrecord), "--model", str(model), "--output_dir", str(out)]
    assert infer(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert message in err
    assert "Traceback" not in err


def _save_keras(folder: Path) -> Path:
    path = folder / "tiny.keras"
    _tiny_keras().save(path)
    return path


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_an_onnx_model_with_external_data_is_refused(tfrecord, tmp_path, capsys):
    """Weights in a side file named inside the model (a path it chose): refused, one line."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.ones((1, WIDTH), np.float32), "w")
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["image"], ["pooled"], name="pool"),
            helper.make_node("Flatten", ["pooled"], ["flat"], name="flat"),
            helper.make_node("MatMul", ["flat", "w"], ["logits"], name="dense"),
        ],
        "team",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [None, 1, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, WIDTH])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    inline = tmp_path / "inline.onnx"
    onnx.save_model(model, str(inline))
    external = tmp_path / "external.onnx"
    onnx.save_model(
        model, str(external), save_as_external_data=True, location="weights.bin", size_threshold=0
    )
    assert (tmp_path / "weights.bin").is_file()
    x = np.random.default_rng(0).random((2, 1, SIZE, SIZE), dtype=np.float32)
    np.testing.assert_allclose(
        load_keras_model(str(inline)).predict_on_batch(x),
        np.repeat(x.mean(axis=(2, 3)), WIDTH, axis=1),
        rtol=1e-6,
    )
    out = tmp_path / "out"
    argv = ["--tfrecords", str(tfrecord), "--model", str(external), "--output_dir", str(out)]
    assert infer(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "refused: the ONNX model stores tensors in external files" in err
    assert not out.exists()


def test_common_architectures_pass_the_op_check(tmp_path):
    """An honest team's usual network (here MobileNetV3, batch norm, hard-swish, SE blocks) runs."""
    model = keras.applications.MobileNetV3Small(
        input_shape=(32, 32, 3), weights=None, classes=WIDTH, classifier_activation=None
    )
    model.export(str(tmp_path / "mobilenet"), verbose=False)
    check_saved_model(str(tmp_path / "mobilenet"))
