"""The one table from a declared Python type to every storage type.

BigQuery, Arrow/DuckDB and `tf.train.Example` types all come from here, keyed
by the Python type a dataset declares. Nothing is guessed from values.
"""

from __future__ import annotations

import enum
import types
import typing
from typing import Any

import attrs

__all__ = ["SCALAR_TYPES", "ScalarType", "UnsupportedTypeError", "resolve", "scalar_of_arrow"]


class UnsupportedTypeError(TypeError):
    """A declared field type has no entry in the type table."""


@attrs.frozen
class ScalarType:
    """How one Python type is stored in each backend.

    Attributes:
        name: The Python type's name, as written in declarations.
        bigquery: The BigQuery standard SQL type.
        arrow: The `pyarrow` type factory name (``pa.<arrow>()``).
        duckdb: The DuckDB type.
        tf_dtype: The `tf` dtype name of the feature (``tf.<tf_dtype>``).
        tf_list: The `tf.train.Feature` list field that carries it.
        hf_dtype: The Hugging Face ``datasets`` ``Value`` dtype of its Arrow
            type (the Parquet shards' features).
    """

    name: str
    bigquery: str
    arrow: str
    duckdb: str
    tf_dtype: str
    tf_list: str
    hf_dtype: str


SCALAR_TYPES: dict[type, ScalarType] = {
    int: ScalarType("int", "INT64", "int64", "BIGINT", "int64", "int64_list", "int64"),
    # tf.train.Example stores floats as float32: FloatList has no float64.
    float: ScalarType("float", "FLOAT64", "float64", "DOUBLE", "float32", "float_list", "float64"),
    str: ScalarType("str", "STRING", "string", "VARCHAR", "string", "bytes_list", "string"),
    bytes: ScalarType("bytes", "BYTES", "binary", "BLOB", "string", "bytes_list", "binary"),
    bool: ScalarType("bool", "BOOL", "bool_", "BOOLEAN", "int64", "int64_list", "bool"),
}


@attrs.frozen
class Resolved:
    """A declared annotation resolved against the type table.

    Attributes:
        python: The base Python type (an `int` subclass for coded enums).
        scalar: Its storage types.
        nullable: Whether the annotation was ``X | None``.
        enum: The `enum.IntEnum` class for coded values, else None.
    """

    python: type
    scalar: ScalarType
    nullable: bool
    enum: type[enum.IntEnum] | None


def resolve(annotation: Any) -> Resolved:
    """Resolves a field annotation (``int``, ``MyEnum``, ``str | None``, ...).

    Args:
        annotation: The evaluated annotation of an attrs field.

    Returns:
        Its base type, storage types, nullability and enum class.

    Raises:
        UnsupportedTypeError: The type is not in `SCALAR_TYPES` and is not an
            `enum.IntEnum`.
    """
    nullable = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) != 1:
            raise UnsupportedTypeError(f"only `X | None` unions are supported, not {annotation}")
        annotation, nullable = members[0], True
    if isinstance(annotation, type) and issubclass(annotation, enum.IntEnum):
        return Resolved(annotation, SCALAR_TYPES[int], nullable, annotation)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        raise UnsupportedTypeError(f"{annotation.__name__}: coded values must be an enum.IntEnum")
    if annotation in SCALAR_TYPES:
        return Resolved(annotation, SCALAR_TYPES[annotation], nullable, None)
    raise UnsupportedTypeError(
        f"{annotation!r} has no storage type; use one of "
        f"{', '.join(t.__name__ for t in SCALAR_TYPES)}, an IntEnum, or `X | None`"
    )


def scalar_of_arrow(dtype: Any) -> ScalarType:
    """Returns the table's entry for an Arrow type (e.g. a query result's column).

    Narrower integer and float types widen to the table's 64-bit ones.

    Raises:
        UnsupportedTypeError: Not an integer, float, string, binary or bool type.
    """
    import pyarrow as pa

    for test, python in (
        (pa.types.is_boolean, bool),
        (pa.types.is_integer, int),
        (pa.types.is_floating, float),
        (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), str),
        (lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t), bytes),
    ):
        if test(dtype):
            return SCALAR_TYPES[python]
    raise UnsupportedTypeError(f"Arrow type {dtype} has no storage type")
