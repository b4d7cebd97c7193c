"""Flat rows <-> serialized `tf.train.Example`, driven by a feature spec, not by values.

Neither direction imports TensorFlow (see `example_proto`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from datathon_etl.framework.schema.types import ScalarType
from datathon_etl.framework.tfrecords.example_proto import ExampleProto

__all__ = ["FeatureSpec", "read_features", "write_features"]


@attrs.frozen
class FeatureSpec:
    """How one column is stored in a `tf.train.Example`.

    Attributes:
        name: Feature name.
        kind: The `tf.train.Feature` list field: ``bytes_list``,
            ``int64_list`` or ``float_list``.
        text: Whether a ``bytes_list`` value is UTF-8 text (``str``).
        boolean: Whether an ``int64_list`` value is a ``bool``.
        nullable: Whether the value may be absent (stored as an empty list).
    """

    name: str
    kind: str
    text: bool = False
    boolean: bool = False
    nullable: bool = False

    @classmethod
    def of(cls, name: str, scalar: ScalarType, *, nullable: bool = False) -> FeatureSpec:
        """Returns the spec of a column of the given storage type."""
        return cls(
            name,
            scalar.tf_list,
            text=scalar.name == "str",
            boolean=scalar.name == "bool",
            nullable=nullable,
        )


def write_features(row: Mapping[str, Any], specs: tuple[FeatureSpec, ...]) -> bytes:
    """Encodes one flat row as a serialized `tf.train.Example`.

    Serialization is deterministic (map entries sorted by feature name), so the
    same row always gives the same bytes, whatever the process's hash seed.

    Args:
        row: Column name -> Python value (enums as ints, None if absent).
        specs: The columns to write, in order.

    Returns:
        The record's bytes.

    Raises:
        ValueError: A value is None for a non-nullable feature, or does not
            fit its feature's type; the message names the feature.
    """
    example = ExampleProto()
    example.features.SetInParent()
    feature_map = example.features.feature
    for spec in specs:
        try:
            _fill(feature_map[spec.name], spec, row[spec.name])
        except (TypeError, ValueError) as error:
            raise ValueError(f"feature {spec.name!r}: {error}") from error
    serialized: bytes = example.SerializeToString(deterministic=True)
    return serialized


def _fill(feature: Any, spec: FeatureSpec, value: Any) -> None:
    if spec.kind not in ("bytes_list", "int64_list", "float_list"):
        raise ValueError(f"unknown feature kind {spec.kind!r}")
    kind = getattr(feature, spec.kind)
    kind.SetInParent()  # An empty (null) list still says which kind the feature is.
    values = kind.value
    if value is None:
        if not spec.nullable:
            raise ValueError("value is None but the feature is not nullable")
    elif spec.text:
        values.append(value.encode("utf-8"))
    elif spec.kind == "int64_list":
        values.append(int(value))
    else:
        values.append(value)


def read_features(serialized: bytes, specs: tuple[FeatureSpec, ...]) -> dict[str, Any]:
    """Decodes a serialized `tf.train.Example` into a flat row.

    Args:
        serialized: The record's bytes.
        specs: The columns to read.

    Returns:
        Column name -> Python value (None for an absent nullable value).

    Raises:
        ValueError: A feature is missing or has the wrong number of values.
    """
    feature_map = ExampleProto.FromString(serialized).features.feature
    row: dict[str, Any] = {}
    for spec in specs:
        if spec.name not in feature_map:
            raise ValueError(f"feature {spec.name!r} is missing")
        values = list(getattr(feature_map[spec.name], spec.kind).value)
        if not values and spec.nullable:
            row[spec.name] = None
            continue
        if len(values) != 1:
            raise ValueError(f"feature {spec.name!r} has {len(values)} values, expected 1")
        value = values[0]
        if spec.text:
            value = value.decode("utf-8")
        elif spec.boolean:
            value = bool(value)
        row[spec.name] = value
    return row
