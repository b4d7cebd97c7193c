"""Dict rows -> Arrow tables under a given schema, with errors that say where.

The schema is always given (it comes from the generated schemas); nothing is
inferred from values. A row whose keys differ from the schema's columns, a
value Arrow cannot convert to its column's type, or a null in a non-nullable
column is a bug upstream, so it fails the pipeline with the row's ``path``
(when it has one) and the column in the message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

__all__ = ["check_columns", "row_label", "rows_to_table"]


def row_label(row: Mapping[str, Any], index: int) -> str:
    """Names a row in an error message: its ``path`` value, else its position."""
    path = row.get("path")
    return str(path) if path is not None else f"row {index}"


def check_columns(row: Mapping[str, Any], names: Sequence[str], index: int = 0) -> None:
    """Checks that a row has exactly the given columns.

    Args:
        row: The row.
        names: The schema's column names.
        index: The row's position, for the message when it has no ``path``.

    Raises:
        ValueError: Columns are missing or unexpected.
    """
    if len(row) == len(names) and all(name in row for name in names):
        return
    missing = [name for name in names if name not in row]
    wanted = set(names)
    extra = sorted(key for key in row if key not in wanted)
    raise ValueError(
        f"{row_label(row, index)}: row does not match the table schema: "
        f"missing columns {missing}, unexpected columns {extra}"
    )


_CONVERSION_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError)


def _to_array(values: list[Any], type_: pa.DataType) -> pa.Array:
    if not pa.types.is_integer(type_):
        return pa.array(values, type=type_)
    # pyarrow truncates floats silently when asked for integers (1.5 -> 1); let
    # it read the values as they are, then refuse anything that is not integral.
    try:
        array = pa.array(values)
    except OverflowError:
        # Beyond int64 (a uint64 column): no float can be among such values.
        return pa.array(values, type=type_)
    if not (pa.types.is_integer(array.type) or pa.types.is_null(array.type)):
        raise TypeError(f"expected integers, got {array.type}")
    return array.cast(type_, safe=True)


def _column(rows: Sequence[Mapping[str, Any]], field: pa.Field) -> pa.Array:
    values = [row[field.name] for row in rows]
    try:
        array = _to_array(values, field.type)
    except _CONVERSION_ERRORS as error:
        # Find the first offending row so the message names it; failure path only.
        for index, value in enumerate(values):
            try:
                _to_array([value], field.type)
            except _CONVERSION_ERRORS as value_error:
                raise ValueError(
                    f"{row_label(rows[index], index)}: {field.name}: "
                    f"{value!r} is not a valid {field.type}: {value_error}"
                ) from error
        raise ValueError(f"{field.name}: cannot convert to {field.type}: {error}") from error
    if not field.nullable and array.null_count:
        index = next(i for i, value in enumerate(values) if value is None)
        raise ValueError(
            f"{row_label(rows[index], index)}: {field.name}: null in a non-nullable column"
        )
    return array


def rows_to_table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Converts dict rows to an Arrow table with exactly the given schema.

    Args:
        rows: The rows; each must have exactly the schema's columns.
        schema: The table's columns, order, types and nullability.

    Returns:
        A table whose schema equals ``schema``.

    Raises:
        ValueError: A row does not fit the schema (see the module docstring).
    """
    names = schema.names
    for index, row in enumerate(rows):
        check_columns(row, names, index)
    arrays = [_column(rows, field) for field in schema]
    return pa.Table.from_arrays(arrays, schema=schema)
