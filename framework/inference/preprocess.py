"""Pre-processing for inference: serialized example -> (ids, model input), and normalisation.

The image is decoded exactly as the generated ``tf.data`` loader decodes it
for training (``tf.io.decode_image``, channels as stored), then normalised.
The default normalisation, `scale_to_unit`, divides by 255 as the training
example does; replace it in code (``InferenceJob.normalize``) or on the
command line (``--normalize package.module:function``) with any picklable
function of a ``uint8`` array ``[H, W, C]``.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from datathon_etl.framework.inference.model_handler import ModelSignature
from datathon_etl.framework.schema.example import Example

__all__ = [
    "DEFAULT_NORMALIZE",
    "Normalize",
    "PrepareExample",
    "decode_pixels",
    "record_identity",
    "resolve_function",
    "scale_to_unit",
    "scale_to_unit_channels_first",
]

Normalize = Callable[[npt.NDArray[np.uint8]], npt.NDArray[Any]]
"""Decoded pixels (``uint8 [H, W, C]``) -> the model's input for one example."""


def scale_to_unit(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """Scales ``uint8`` pixels to ``float32`` in [0, 1]: ``pixels / 255`` (the default)."""
    return pixels.astype(np.float32) / np.float32(255)


def scale_to_unit_channels_first(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """`scale_to_unit`, then ``[C, H, W]``: the layout PyTorch's image models take."""
    return np.ascontiguousarray(np.moveaxis(scale_to_unit(pixels), -1, 0))


DEFAULT_NORMALIZE = "datathon_etl.framework.inference.preprocess:scale_to_unit"
"""The ``--normalize`` default, `scale_to_unit`."""


def resolve_function(reference: str) -> Callable[..., Any]:
    """Imports a function named ``package.module:function``.

    Raises:
        ValueError: The reference is malformed or names nothing callable.
    """
    module_name, sep, name = reference.partition(":")
    if not sep or not module_name or not name:
        raise ValueError(f"{reference!r}: expected 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"{reference!r}: cannot import {module_name}: {e}") from e
    function = getattr(module, name, None)
    if not callable(function):
        raise ValueError(f"{reference!r}: {module_name} has no function {name!r}")
    return function  # type: ignore[no-any-return]


def decode_pixels(data: bytes) -> npt.NDArray[np.uint8]:
    """Decodes an encoded image (JPEG, PNG, ...) as the training loader does: ``[H, W, C]``."""
    import tensorflow as tf

    return np.asarray(tf.io.decode_image(data, channels=0, expand_animations=False))


_TF_FUNCTION_NODE = re.compile(r"\{\{function_node [^}]*\}\}")


def _message(error: Exception) -> str:
    # TensorFlow's op errors carry the op's internal name first; keep what it says.
    text = str(getattr(error, "message", None) or error)
    return f"{type(error).__name__}: {_TF_FUNCTION_NODE.sub('', text).strip()}"


def record_identity(record: bytes) -> str:
    """Names a record that does not parse: ``sha256:<first 16 hex digits>``."""
    return "sha256:" + hashlib.sha256(record).hexdigest()[:16]


@attrs.frozen
class PrepareExample:
    """`RunInference`'s pre-processing: ``(file, serialized example) -> (ids, model input)``.

    Raises ``ValueError`` naming the dataset, the record and the field when
    the record is not an example of the dataset, its image does not decode,
    or the normalised image does not fit the model's input; `RunInference`'s
    exception handling sends that record to the dead-letter output.

    Attributes:
        dataset: The dataset's name, for messages.
        image_feature: The feature holding the encoded image, for messages.
        decode: Serialized ``tf.train.Example`` -> `Example` (generated).
        ids_row: `Example` -> its id columns (generated).
        normalize: Decoded pixels -> the model's input.
        signature: The model's input shape and dtype.
    """

    dataset: str
    image_feature: str
    decode: Callable[[bytes], Example[Any, Any]]
    ids_row: Callable[[Example[Any, Any]], dict[str, Any]]
    normalize: Normalize
    signature: ModelSignature

    def __call__(self, record: tuple[str, bytes]) -> tuple[Mapping[str, Any], npt.NDArray[Any]]:
        """Decodes, normalises and checks one record."""
        source, serialized = record
        try:
            example = self.decode(serialized)
        except Exception as e:
            raise ValueError(
                f"{self.dataset}: {source}: {record_identity(serialized)}: not a "
                f"{self.dataset} example: {_message(e)}"
            ) from e
        ids = self.ids_row(example)
        try:
            pixels = decode_pixels(example.image)
            model_input = np.asarray(self.normalize(pixels), dtype=self.signature.input_dtype)
            self.signature.check_example(model_input.shape)
        except Exception as e:
            raise ValueError(
                f"{self.dataset}: {example.path}: {self.image_feature}: {_message(e)}"
            ) from e
        return ids, model_input
