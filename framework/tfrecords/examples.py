"""A data set's examples to and from TFRecord features, given its declared specs.

A generated package's ``dataset.json`` declares its `FeatureSpec` tuple and
`load_package` makes one `ExampleFeatures` of it; its ``features.py``'s
``encode``, ``decode``, ``load_dataset``, ... are this class's methods.
Writing needs no TensorFlow; `feature_dict` and `load_dataset` import it
when called.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from datathon_etl.framework.schema import from_row, to_row
from datathon_etl.framework.schema.example import Example
from datathon_etl.framework.tfrecords.features import FeatureSpec, read_features, write_features

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = ["ExampleFeatures"]

K = TypeVar("K")
L = TypeVar("L")


@attrs.frozen
class ExampleFeatures(Generic[K, L]):
    """Examples of one data set <-> its TFRecord features.

    Attributes:
        key_type: The data set's key class.
        labels_type: Its labels class.
        specs: Its features: the image first, then ``path``, the key's and
            the labels' columns.
    """

    key_type: type[K]
    labels_type: type[L]
    specs: tuple[FeatureSpec, ...]

    @property
    def image_feature(self) -> str:
        """The image's feature name."""
        return self.specs[0].name

    def encode(self, example: Example[K, L]) -> bytes:
        """Serializes one example as a `tf.train.Example`; enums are stored as their codes."""
        row = to_row(
            {self.image_feature: example.image, "path": example.path}, example.key, example.labels
        )
        return write_features(row, self.specs)

    def decode(self, serialized: bytes) -> Example[K, L]:
        """Decodes a serialized `tf.train.Example` written by `encode`."""
        return self.from_flat(read_features(serialized, self.specs))

    def feature_dict(self) -> dict[str, Any]:
        """Returns the feature dict for `tf.io.parse_single_example` (imports TensorFlow)."""
        from datathon_etl.framework.tfrecords.dataset import feature_dict

        return feature_dict(self.specs)

    def from_parsed(self, parsed: Mapping[str, Any]) -> Example[K, L]:
        """Builds an example from the eager output of `tf.io.parse_single_example`."""
        row = {}
        for spec in self.specs:
            value = parsed[spec.name].numpy()
            if spec.nullable:
                value = value[0] if len(value) else None
            if isinstance(value, bytes) and spec.text:
                value = value.decode("utf-8")
            row[spec.name] = value.item() if hasattr(value, "item") else value
        return self.from_flat(row)

    def from_flat(self, row: Mapping[str, Any]) -> Example[K, L]:
        """Builds an example from a flat row of feature values."""
        return Example(
            image=row[self.image_feature],
            path=row["path"],
            key=from_row(self.key_type, row),
            labels=from_row(self.labels_type, row),
        )

    def load_dataset(
        self, pattern: str | Sequence[str], *, decode_image: bool = True
    ) -> tf.data.Dataset:
        """Returns a `tf.data.Dataset` of parsed examples from TFRecords matching ``pattern``.

        Each element is a dict of tensors keyed by feature name; with
        ``decode_image`` the image is a ``uint8`` tensor ``[H, W, C]``.
        """
        from datathon_etl.framework.tfrecords.dataset import load_dataset

        return load_dataset(pattern, self.specs, self.image_feature, decode_image=decode_image)
