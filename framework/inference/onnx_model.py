"""`OnnxPredictor`: an ONNX model (what PyTorch's ``torch.onnx.export`` writes) run by onnxruntime.

An ONNX graph is data: its standard operators compute tensors and none
reads or writes a file, and onnxruntime runs only those and its own
built-in contrib operators (a custom operator would need a library
registered in the session, which this never does). The one way a model file
reaches another file is *external data*: a tensor stored in a side file
named by a path inside the model. Such a model is refused (unless trusted):
the model is parsed with ``onnx`` without loading external data, every
tensor in every graph and subgraph is checked, and the session is built
from the model's bytes.

The model must take one tensor ``[batch, ...]`` and give one ``[batch,
width]``. PyTorch's image models take channels first (``[batch, C, H,
W]``): run them with ``--normalize
datathon_etl.framework.inference.preprocess:scale_to_unit_channels_first``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from datathon_etl.framework.inference.saved_model_check import UnsafeModelError

__all__ = ["ONNX_SUFFIX", "OnnxPredictor"]

ONNX_SUFFIX = ".onnx"

_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(uint8)": "uint8",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
}


def _tensors(graph: Any) -> Iterator[Any]:
    """Every tensor of ``graph`` and its subgraphs (initializers and tensor attributes)."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from _tensors(subgraph)


def _dimension(value: object) -> int | None:
    return value if isinstance(value, int) else None


class OnnxPredictor:
    """An ONNX model with Keras' ``predict_on_batch``, on onnxruntime's CPU provider.

    Attributes:
        signature: One example's input shape, the output width and the input dtype.
    """

    def __init__(self, path: str, *, trusted: bool = False) -> None:
        """Loads the model at ``path`` (a local ``.onnx`` file).

        Raises:
            UnsafeModelError: It stores tensors in external files (not trusted).
            ValueError: It does not parse, or does not take one tensor and give one.
        """
        import onnx
        import onnxruntime as ort

        from datathon_etl.framework.inference.model_handler import ModelSignature, _signature

        try:
            model = onnx.load(path, load_external_data=False)
        except Exception as e:  # protobuf's and onnx's errors on a malformed file
            raise ValueError(f"not an ONNX model: {type(e).__name__}: {e}") from e
        if not trusted and any(
            t.data_location == onnx.TensorProto.EXTERNAL for t in _tensors(model.graph)
        ):
            raise UnsafeModelError(
                "the ONNX model stores tensors in external files; only self-contained "
                "models are read"
            )
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        try:
            self._session = ort.InferenceSession(
                model.SerializeToString() if not trusted else path,
                sess_options=options,
                providers=["CPUExecutionProvider"],
            )
        except Exception as e:  # onnxruntime raises its own exception types
            raise ValueError(f"onnxruntime cannot load the model: {e}") from e
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(
                f"the model must take one input and give one output; "
                f"it takes {len(inputs)} and gives {len(outputs)}"
            )
        (self._input,) = inputs
        dtype = _DTYPES.get(self._input.type)
        if dtype is None:
            raise ValueError(f"the model's input is {self._input.type}, not a numeric tensor")
        self._dtype = dtype
        shape = _signature(
            tuple(_dimension(d) for d in self._input.shape),
            tuple(_dimension(d) for d in outputs[0].shape),
            path,
        )
        self.signature: ModelSignature = ModelSignature(
            shape.input_shape, shape.output_width, input_dtype=dtype
        )

    def predict_on_batch(self, batch: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Runs the model on one batch; returns ``[batch, width]``."""
        (result,) = self._session.run(None, {self._input.name: batch.astype(self._dtype)})
        return np.asarray(result)
