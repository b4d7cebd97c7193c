"""`KerasModelHandler`: Beam's `ModelHandler` for a saved Keras or TensorFlow model.

Beam's own ``TFModelHandlerTensor``/``TFModelHandlerNumpy``
(``apache_beam.ml.inference.tensorflow_inference``) cannot be used here: that
module imports ``tensorflow_hub`` at import time, which is not a dependency of
this project, and it calls the model eagerly (``model(batch)``) rather than
through Keras' compiled predict step. So this handler specialises Beam's
generic `ModelHandler` the same way, and leaves everything else to
`RunInference`: batching (``BatchElements`` with the handler's
``min_batch_size = max_batch_size = batch_size``), model sharing, metrics and
the dead-letter output.

How the model is shared: `RunInference` loads it in its DoFn's ``setup``
through ``shared.Shared`` under one tag per transform, so each worker process
loads it once and every thread and bundle of that process uses the same
instance (`load_model` is called once per process, not per element or
bundle).

What loads: a Keras v3 ``.keras`` file, a legacy ``.h5``/``.hdf5`` file, a
TensorFlow SavedModel folder (its ``serving_default`` signature, which must
take one image batch and return one output), or an ``.onnx`` file (what
PyTorch exports), run by onnxruntime (`OnnxPredictor`). Beam's own
``OnnxModelHandlerNumpy`` is not used: it loads the file by path, external
data and all, which a team's model must not do; batching, sharing and the
dead-letter output stay `RunInference`'s. Local paths or any URI Beam's
``FileSystems`` reads (``gs://...``): a remote model is copied to a local
temporary folder once per process, inside `load_model`, then loaded (Keras
and TensorFlow cannot read through Beam's filesystems); a ``.keras``/``.h5``
copy is deleted as soon as it is loaded. Keras models are loaded with
``compile=False``: inference needs no optimizer or loss, so a team's custom
training loss never stops its model from loading.

A team's model is untrusted: loading and running it must not run the
team's code or touch a file. Unless the model is declared trusted
(``trusted=True``, the ``--trusted_model`` flag), Keras files load in Keras'
safe mode (no ``Lambda`` layers, no arbitrary Python objects in the
config), a SavedModel's ops are checked against an allow-list before
TensorFlow loads it (`check_saved_model`), and an ONNX model must hold all
its tensors (no external data file). The check runs in every load, so
in the driver and on each worker alike.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt
from apache_beam.io.filesystem import BeamIOError, CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from datathon_etl.framework.inference.onnx_model import ONNX_SUFFIX, OnnxPredictor
from datathon_etl.framework.inference.saved_model_check import UnsafeModelError, check_saved_model

__all__ = [
    "SAVED_MODEL_SIGNATURE",
    "KerasModelHandler",
    "ModelSignature",
    "SavedModelPredictor",
    "inspect_model",
    "load_keras_model",
]

SAVED_MODEL_SIGNATURE = "serving_default"
"""The SavedModel signature used for predictions."""

_SAVED_MODEL_FILE = "saved_model.pb"


@attrs.frozen
class ModelSignature:
    """What a model takes and gives, read from the model itself.

    Attributes:
        input_shape: One example's shape, without the batch dimension; ``None``
            where the model accepts any size.
        output_width: Values the model outputs per example.
        input_dtype: The input's dtype name, e.g. ``float32``.
    """

    input_shape: tuple[int | None, ...]
    output_width: int
    input_dtype: str = "float32"

    def describe_input(self) -> str:
        """The input shape as ``320x320x1`` (``?`` for any size)."""
        return "x".join("?" if d is None else str(d) for d in self.input_shape)

    def check_example(self, shape: Sequence[int]) -> None:
        """Checks that one example of ``shape`` fits the model's input.

        Raises:
            ValueError: It does not.
        """
        fits = len(shape) == len(self.input_shape) and all(
            want is None or want == got for want, got in zip(self.input_shape, shape, strict=True)
        )
        if not fits:
            got = "x".join(str(d) for d in shape)
            raise ValueError(f"the input is {got}, the model takes {self.describe_input()}")


class SavedModelPredictor:
    """A TensorFlow SavedModel's prediction signature, with Keras' ``predict_on_batch``.

    Attributes:
        signature: One example's input shape and the output width.
    """

    def __init__(self, path: str, signature_key: str = SAVED_MODEL_SIGNATURE) -> None:
        """Loads the SavedModel at ``path``.

        Raises:
            ValueError: It has no such signature, or the signature does not
                take exactly one tensor and return exactly one.
        """
        import tensorflow as tf

        self._loaded = tf.saved_model.load(path)
        signatures = dict(self._loaded.signatures)
        if signature_key not in signatures:
            raise ValueError(
                f"{path}: the SavedModel has no {signature_key!r} signature "
                f"(it has {sorted(signatures)})"
            )
        self._fn = signatures[signature_key]
        args, kwargs = self._fn.structured_input_signature
        outputs = self._fn.structured_outputs
        if args or len(kwargs) != 1 or not isinstance(outputs, dict) or len(outputs) != 1:
            raise ValueError(
                f"{path}: signature {signature_key!r} must take one tensor and return one; "
                f"it takes {sorted(kwargs)} and returns {outputs}"
            )
        ((self._input_name, input_spec),) = kwargs.items()
        ((self._output_name, output_spec),) = outputs.items()
        self._dtype = input_spec.dtype
        shape = _signature(
            tuple(input_spec.shape.as_list()), tuple(output_spec.shape.as_list()), path
        )
        self.signature = attrs.evolve(shape, input_dtype=input_spec.dtype.name)

    def predict_on_batch(self, batch: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Runs the signature on one batch; returns ``[batch, width]``."""
        import tensorflow as tf

        result = self._fn(**{self._input_name: tf.constant(batch, dtype=self._dtype)})
        return np.asarray(result[self._output_name])


def _signature(
    input_shape: tuple[int | None, ...], output_shape: tuple[int | None, ...], what: str
) -> ModelSignature:
    if len(input_shape) < 2:
        raise ValueError(f"{what}: the model input {input_shape} has no batch dimension")
    if len(output_shape) != 2 or output_shape[1] is None:
        raise ValueError(
            f"{what}: the model must output one vector per example ([batch, labels]); "
            f"its output shape is {output_shape}"
        )
    return ModelSignature(input_shape=tuple(input_shape[1:]), output_width=int(output_shape[1]))


def inspect_model(model: Any, what: str = "model") -> ModelSignature:
    """Reads a loaded model's input shape and output width.

    Args:
        model: What `load_keras_model` returned.
        what: Names the model in errors (its URI).

    Returns:
        The signature.

    Raises:
        ValueError: The model does not take one input tensor and give one
            ``[batch, width]`` output, or its input shape is unknown.
    """
    if isinstance(model, SavedModelPredictor | OnnxPredictor):
        return model.signature
    try:
        inputs, outputs = list(model.inputs), list(model.outputs)
    except (AttributeError, ValueError) as e:
        raise ValueError(
            f"{what}: the model has no known input shape (build it on a keras.Input): {e}"
        ) from e
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(
            f"{what}: the model must take one input and give one output; "
            f"it takes {len(inputs)} and gives {len(outputs)}"
        )
    signature = _signature(tuple(inputs[0].shape), tuple(outputs[0].shape), what)
    return attrs.evolve(signature, input_dtype=str(inputs[0].dtype))


def _is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def _copy_file(source: str, target: str) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with (
        FileSystems.open(source, compression_type=CompressionTypes.UNCOMPRESSED) as src,
        open(target, "wb") as dst,
    ):
        shutil.copyfileobj(src, dst, 1 << 20)


def _copy_tree(source: str, target: str) -> None:
    root = source.rstrip("/")
    (result,) = FileSystems.match([f"{root}/**"])
    for metadata in result.metadata_list:
        relative = posixpath.relpath(metadata.path, root)
        if relative.startswith("..") or os.path.isabs(relative):
            continue
        _copy_file(metadata.path, os.path.join(target, *relative.split("/")))


def _remove_later(path: str) -> None:
    atexit.register(shutil.rmtree, path, True)


@contextlib.contextmanager
def _local_copy(uri: str) -> Iterator[str]:
    """Yields a local path holding ``uri`` (itself, when already local).

    A remote SavedModel may read its files after loading, so its copy is
    kept until the process exits; a remote file's copy is deleted at once.
    """
    if not _is_remote(uri):
        yield uri.removeprefix("file://")
        return
    folder = tempfile.mkdtemp(prefix="datathon-etl-model-")
    local = os.path.join(folder, posixpath.basename(uri.rstrip("/")) or "model")
    saved_model = False
    try:
        try:
            saved_model = FileSystems.exists(posixpath.join(uri.rstrip("/"), _SAVED_MODEL_FILE))
            if saved_model:
                _copy_tree(uri, local)
            elif FileSystems.exists(uri):
                _copy_file(uri, local)
            else:
                raise ValueError(f"{uri}: no such model file or SavedModel folder")
        except (BeamIOError, OSError) as e:
            raise ValueError(f"{uri}: cannot read the model: {e}") from e
        yield local
    finally:
        if saved_model:
            _remove_later(folder)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def _is_saved_model(path: str) -> bool:
    return os.path.isfile(os.path.join(path, _SAVED_MODEL_FILE))


def load_keras_model(uri: str, *, trusted: bool = False) -> Any:
    """Loads a ``.keras``, ``.h5``, SavedModel or ``.onnx``, local or remote (module docstring).

    Args:
        uri: A file path, a SavedModel folder, or a URI such as ``gs://b/m.keras``.
        trusted: Skip the safety checks (Keras' safe mode, the SavedModel op
            check): only for a model whose code the organiser trusts.

    Returns:
        A ``keras.Model`` (compiled: no), a `SavedModelPredictor` or an
        `OnnxPredictor`; each has ``predict_on_batch``.

    Raises:
        ValueError: The model cannot be found or loaded, or is refused by a
            safety check (`UnsafeModelError`).
    """
    with _local_copy(uri) as path:
        if os.path.isdir(path):
            if not _is_saved_model(path):
                raise ValueError(f"{uri}: a folder, but not a SavedModel (no {_SAVED_MODEL_FILE})")
            if not trusted:
                try:
                    check_saved_model(path)
                except UnsafeModelError as e:
                    raise UnsafeModelError(f"{uri}: refused: {e}{_TRUST_HINT}") from e
            try:
                return SavedModelPredictor(path)
            except ValueError:
                raise
            except Exception as e:  # TensorFlow's errors on a malformed model are many.
                raise ValueError(f"{uri}: cannot load the SavedModel: {_one_line(e)}") from e
        if not os.path.isfile(path):
            raise ValueError(f"{uri}: no such model file or SavedModel folder")
        if path.endswith(ONNX_SUFFIX):
            try:
                return OnnxPredictor(path, trusted=trusted)
            except UnsafeModelError as e:
                raise UnsafeModelError(f"{uri}: refused: {e}{_TRUST_HINT}") from e
            except ValueError as e:
                raise ValueError(f"{uri}: {e}") from e
        import keras

        try:
            return keras.models.load_model(path, compile=False, safe_mode=not trusted)
        except Exception as e:  # A malformed config raises anything (KeyError, ...).
            raise ValueError(f"{uri}: cannot load the Keras model: {_one_line(e)}") from e


_TRUST_HINT = (
    "; only pure tensor ops run by default (--trusted_model skips this check, "
    "for a model whose code you trust)"
)


def _one_line(error: Exception) -> str:
    text = " ".join(str(error).split()) or "no message"
    return f"{type(error).__name__}: {text}"


class KerasModelHandler(ModelHandler[npt.NDArray[Any], PredictionResult, Any]):
    """Runs a saved Keras (or SavedModel) model on batches of numpy arrays.

    Each example is one preprocessed array (e.g. ``[H, W, C]`` float32); a
    batch is stacked and run with ``predict_on_batch``; each result's
    ``inference`` is the example's output vector.

    Example:
        ``arrays | RunInference(KerasModelHandler("model.keras", batch_size=32))``
    """

    def __init__(self, model_uri: str, *, batch_size: int = 32, trusted: bool = False) -> None:
        """Configures the handler; nothing is loaded until a worker needs it.

        Args:
            model_uri: The model (see `load_keras_model`).
            batch_size: Examples per model call: `RunInference` batches with
                ``min_batch_size = max_batch_size = batch_size`` (a bundle's
                last batch may be smaller).
            trusted: Load without the safety checks (see `load_keras_model`).

        Raises:
            ValueError: ``batch_size`` is not positive.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        super().__init__(min_batch_size=batch_size, max_batch_size=batch_size)
        self._model_uri = model_uri
        self._batch_size = batch_size
        self._trusted = trusted

    def __repr__(self) -> str:
        return (
            f"KerasModelHandler({self._model_uri!r}, batch_size={self._batch_size}, "
            f"trusted={self._trusted})"
        )

    @property
    def model_uri(self) -> str:
        """The model's location."""
        return self._model_uri

    def load_model(self) -> Any:
        """Loads the model (once per worker process: `RunInference` shares it)."""
        return _load_for_worker(self._model_uri, self._trusted)

    def update_model_path(self, model_path: str | None = None) -> None:
        """Points the handler at another model (Beam's model refresh)."""
        self._model_uri = model_path or self._model_uri

    def run_inference(
        self,
        batch: Sequence[npt.NDArray[Any]],
        model: Any,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[PredictionResult]:
        """Predicts one batch with ``model.predict_on_batch``.

        Args:
            batch: Examples of one shape.
            model: What `load_model` returned.
            inference_args: Not supported; must be empty.

        Returns:
            One `PredictionResult` per example, in order.
        """
        outputs = np.asarray(model.predict_on_batch(np.stack(batch)))
        return [
            PredictionResult(example, output, self._model_uri)
            for example, output in zip(batch, outputs, strict=True)
        ]

    def validate_inference_args(self, inference_args: dict[str, Any] | None) -> None:
        """Refuses extra inference arguments: the model takes the batch only."""
        if inference_args:
            raise ValueError(f"KerasModelHandler takes no inference_args, got {inference_args}")

    def get_num_bytes(self, batch: Sequence[npt.NDArray[Any]]) -> int:
        """The batch's size in bytes (its arrays' data, not a pickle of them)."""
        return sum(int(np.asarray(example).nbytes) for example in batch)

    def get_metrics_namespace(self) -> str:
        """Beam metrics of this handler are under ``datathon_etl_keras``."""
        return "datathon_etl_keras"


def _load_for_worker(uri: str, trusted: bool) -> Any:
    # TensorFlow's start-up chatter would otherwise fill every worker's log.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return load_keras_model(uri, trusted=trusted)
