"""Reading TFRecords back: a `tf.data.Dataset` of parsed, typed examples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf

__all__ = ["load_dataset"]


def load_dataset(
    pattern: str | Sequence[str],
    features: Mapping[str, Any],
    image_feature: str,
    *,
    decode_image: bool = True,
    channels: int = 0,
) -> tf.data.Dataset:
    """Returns the examples of every TFRecord file matching ``pattern``.

    Args:
        pattern: A glob (local or gs://) or a list of globs, e.g.
            ``out/tfrecords/train/frontal/*.tfrecord``.
        features: The feature dict for `tf.io.parse_single_example` (a
            generated ``FEATURES``).
        image_feature: The feature holding the encoded image.
        decode_image: Decode the image into a ``uint8`` tensor ``[H, W, C]``;
            otherwise leave its encoded bytes.
        channels: Channels to decode to (0: as stored).

    Returns:
        A dataset of feature dicts, in file order (files sorted by name).
    """
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
