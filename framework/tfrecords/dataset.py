"""Reading TFRecords back: a `tf.data.Dataset` of parsed, typed examples.

`load_folder` reads any command's TFRecord folder through the
``features.json`` beside its shards; `load_dataset` takes the specs itself
(a generated ``features.load_dataset`` passes its data set's).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from datathon_etl.framework.tfrecords.features import FeatureSpec

__all__ = ["feature_dict", "load_dataset", "load_folder"]

_DTYPES = {"bytes_list": tf.string, "int64_list": tf.int64, "float_list": tf.float32}


def feature_dict(specs: Sequence[FeatureSpec]) -> dict[str, Any]:
    """Returns the feature dict for `tf.io.parse_single_example` of these columns.

    A nullable column is a `tf.io.RaggedFeature` (an absent value is an empty
    list); every other column is one scalar.
    """
    features: dict[str, Any] = {}
    for spec in specs:
        dtype = _DTYPES[spec.kind]
        if spec.nullable:
            features[spec.name] = tf.io.RaggedFeature(dtype)
        else:
            features[spec.name] = tf.io.FixedLenFeature([], dtype)
    return features


def load_dataset(
    pattern: str | Sequence[str],
    specs: Sequence[FeatureSpec],
    image_feature: str,
    *,
    decode_image: bool = True,
    channels: int = 0,
) -> tf.data.Dataset:
    """Returns the examples of every TFRecord file matching ``pattern``.

    Args:
        pattern: A glob (local or gs://) or a list of globs, e.g.
            ``out/tfrecords/train/frontal/*.tfrecord``.
        specs: The columns the records were written with (a generated
            ``SPECS``).
        image_feature: The feature holding the encoded image.
        decode_image: Decode the image into a ``uint8`` tensor ``[H, W, C]``;
            otherwise leave its encoded bytes.
        channels: Channels to decode to (0: as stored).

    Returns:
        A dataset of feature dicts, in file order (files sorted by name).
    """
    features = feature_dict(specs)
    files = tf.data.Dataset.list_files(pattern, shuffle=False)
    records = tf.data.TFRecordDataset(files)

    def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        parsed: dict[str, tf.Tensor] = tf.io.parse_single_example(serialized, features)
        if decode_image:
            parsed[image_feature] = tf.io.decode_image(
                parsed[image_feature], channels=channels, expand_animations=False
            )
        return parsed

    return records.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def load_folder(root: str, *, decode_image: bool = True, channels: int = 0) -> tf.data.Dataset:
    """Returns the examples of a TFRecord output folder (local or gs://), as its features.json says.

    Every command that writes TFRecords (an ingestion's ``--output_tfrecord_dir``,
    ``images-to-tfrecord``'s) writes ``features.json`` beside them: the image
    feature, each column's type, and the folders holding shards. A column
    that is never absent comes back as a scalar (shape ``[]``); a nullable
    one as a ragged list of 0 or 1 values.

    Args:
        root: The TFRecord folder (``--output_tfrecord_dir``).
        decode_image: Decode the image into a ``uint8`` tensor ``[H, W, C]``.
        channels: Channels to decode to (0: as stored).
    """
    with tf.io.gfile.GFile(f"{root}/features.json", "r") as f:
        body = json.load(f)
    specs = [FeatureSpec(**spec) for spec in body["features"].values()]
    folders = body.get("folders") or [""]
    patterns = [
        f"{root}/{folder}/data-*.tfrecord" if folder else f"{root}/data-*.tfrecord"
        for folder in folders
    ]
    return load_dataset(
        patterns, specs, body["image_feature"], decode_image=decode_image, channels=channels
    )
