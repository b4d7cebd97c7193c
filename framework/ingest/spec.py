"""`IngestSpec`: what one dataset supplies to the generic ingestion pipeline.

Generated entry points (``generated/<dataset>/ingest.py``) build it from the
dataset's parsing module and its generated artifacts; nothing else in the
pipeline knows which dataset it is running.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
import pyarrow as pa

from datathon_etl.framework.schema.example import Example
from datathon_etl.framework.tfrecords import FeatureSpec

__all__ = ["IngestSpec"]


@attrs.frozen
class IngestSpec:
    """A dataset's layout functions and generated artifacts.

    Attributes:
        dataset: The dataset's name.
        parse_path: Image path (a tar member name) -> key; raises ValueError.
        format_path: Key -> the canonical relative path (outputs use it).
        parse_label_row: (CSV row, ``file:line N``) -> (key, labels); raises
            ValueError (`SourceRowError` for a bad cell).
        csv_columns: Columns every label CSV must have.
        partition: Key -> the TFRecord folder of the image (``train/frontal``).
        partitions: Every folder `partition` can return.
        image_feature: The TFRecord feature holding the encoded image.
        encode: Example -> `tf.train.Example` (generated).
        labels_row: Example -> the labels table's row (generated).
        labels_schema: Arrow schema of the labels table (generated).
        labels_bigquery_schema: BigQuery JSON schema of the labels table
            (generated; used as is for BigQuery tables).
        feature_specs: The TFRecord features (generated), written beside the
            shards as ``features.json``.
    """

    dataset: str
    parse_path: Callable[[str], Any]
    format_path: Callable[[Any], str]
    parse_label_row: Callable[[Mapping[str, str | None], str], tuple[Any, Any]]
    csv_columns: tuple[str, ...]
    partition: Callable[[Any], str]
    partitions: tuple[str, ...]
    image_feature: str
    encode: Callable[[Example[Any, Any]], Any]
    labels_row: Callable[[Example[Any, Any]], dict[str, Any]]
    labels_schema: pa.Schema
    labels_bigquery_schema: Mapping[str, Any]
    feature_specs: tuple[FeatureSpec, ...]
