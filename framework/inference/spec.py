"""`InferenceSpec`: what one dataset supplies to the generic inference pipeline.

Generated entry points (``generated/<dataset>/infer.py``) build it from the
dataset's generated artifacts; nothing else in the pipeline knows which
dataset it is running.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import pyarrow as pa

from datathon_etl.framework.schema.example import Example

__all__ = ["InferenceSpec", "check_output_width"]


@attrs.frozen
class InferenceSpec:
    """A dataset's generated artifacts for inference.

    Attributes:
        dataset: The dataset's name.
        image_feature: The TFRecord feature holding the encoded image.
        decode: Serialized ``tf.train.Example`` -> `Example` (generated
            ``features.decode``).
        ids_row: `Example` -> the id columns (generated ``rows.ids_row``).
        prediction_row: (ids, model output) -> the predictions table's row;
            raises ``ValueError`` on a width mismatch (generated
            ``rows.prediction_row``).
        target_columns: One per model output, in order: the target labels
            (generated ``rows.TARGET_COLUMNS``); metadata labels are not
            model outputs.
        predictions_schema: Arrow schema of the predictions table (generated).
        predictions_bigquery_schema: Its BigQuery JSON schema (generated; used
            as is for BigQuery tables).
    """

    dataset: str
    image_feature: str
    decode: Callable[[bytes], Example[Any, Any]]
    ids_row: Callable[[Example[Any, Any]], dict[str, Any]]
    prediction_row: Callable[[Mapping[str, Any], Sequence[float]], dict[str, Any]]
    target_columns: tuple[str, ...]
    predictions_schema: pa.Schema
    predictions_bigquery_schema: Mapping[str, Any]


def check_output_width(spec: InferenceSpec, width: int) -> None:
    """Checks a model's output width with the dataset's own row mapper.

    The generated ``prediction_row`` is the one place that knows the label
    count of target labels; it is given a row of ``width`` values and placeholder ids, so the
    driver refuses a model with exactly the error the workers would raise.

    Raises:
        ValueError: ``width`` is not the number of target labels.
    """
    ids = {field.name: None for field in spec.predictions_schema}
    spec.prediction_row(ids, [0.0] * width)
