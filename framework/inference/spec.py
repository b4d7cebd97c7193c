"""`InferenceSpec`: what one dataset supplies to the generic inference pipeline.

`inference_spec` builds it from a generated package's declarations (the
``generated/<dataset>/infer.py`` entry point runs it); nothing else in the
pipeline knows which dataset it is running.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import pyarrow as pa

from datathon_etl.framework.schema.example import Example
from datathon_etl.framework.schema.package import DatasetPackage
from datathon_etl.framework.schema.rows import ids_row

__all__ = ["InferenceSpec", "check_output_width", "inference_spec"]


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


def inference_spec(package: DatasetPackage) -> InferenceSpec:
    """The inference spec of a generated package's data set."""
    return InferenceSpec(
        dataset=package.name,
        image_feature=package.features.image_feature,
        decode=package.features.decode,
        ids_row=ids_row,
        prediction_row=package.rows.prediction_row,
        target_columns=package.rows.target_columns,
        predictions_schema=package.predictions_schema,
        predictions_bigquery_schema=package.predictions_bigquery_schema,
    )


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
