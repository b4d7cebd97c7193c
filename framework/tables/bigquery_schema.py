"""Arrow schema <-> BigQuery JSON schema, and dict rows -> BigQuery JSON rows.

Pure functions, so the BigQuery sink itself holds no logic worth testing
against a live service. The JSON form is the one ``bq`` and Beam read:
``{"fields": [{"name": ..., "type": ..., "mode": ..., "description": ...}]}``.

Mode is optional in that form and defaults to ``NULLABLE`` (the legacy
MIMIC-CXR schema files carry none), so a nullable Arrow field is written
without a mode unless ``explicit_mode`` is set, and a field without a mode is
read as nullable. Column descriptions travel in Arrow field metadata under
`DESCRIPTION_KEY`. Only scalar columns are supported: ``REPEATED`` and
``RECORD`` columns are refused with the column's name.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa

__all__ = [
    "DESCRIPTION_KEY",
    "BigQueryField",
    "BigQuerySchema",
    "arrow_to_bigquery_schema",
    "bigquery_to_arrow_schema",
    "bytes_columns",
    "encode_bigquery_row",
]

DESCRIPTION_KEY = b"description"
"""Arrow field metadata key holding a column's description."""

BigQueryField = dict[str, str]
"""One field of a BigQuery JSON schema: name, type, optional mode and description."""

BigQuerySchema = dict[str, list[BigQueryField]]
"""A BigQuery JSON schema: ``{"fields": [...]}``."""

# Checked in order; the first predicate that holds gives the BigQuery type.
# uint64 is left out: its upper half does not fit INT64.
_ARROW_TO_BIGQUERY: tuple[tuple[Callable[[pa.DataType], bool], str], ...] = (
    (pa.types.is_boolean, "BOOL"),
    (
        lambda t: pa.types.is_signed_integer(t) or t in (pa.uint8(), pa.uint16(), pa.uint32()),
        "INT64",
    ),
    (pa.types.is_floating, "FLOAT64"),
    (
        lambda t: (
            pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
        ),
        "STRING",
    ),
    (
        lambda t: (
            pa.types.is_binary(t)
            or pa.types.is_large_binary(t)
            or pa.types.is_fixed_size_binary(t)
            or pa.types.is_binary_view(t)
        ),
        "BYTES",
    ),
    (pa.types.is_date, "DATE"),
    # A time zone makes a timestamp an instant (TIMESTAMP); without one it is
    # a wall-clock time (DATETIME).
    (lambda t: pa.types.is_timestamp(t) and t.tz is not None, "TIMESTAMP"),
    (pa.types.is_timestamp, "DATETIME"),
)

# Legacy SQL names (INTEGER, FLOAT, BOOLEAN) are accepted on input.
_BIGQUERY_TO_ARROW: dict[str, pa.DataType] = {
    "INT64": pa.int64(),
    "INTEGER": pa.int64(),
    "FLOAT64": pa.float64(),
    "FLOAT": pa.float64(),
    "STRING": pa.string(),
    "BYTES": pa.binary(),
    "BOOL": pa.bool_(),
    "BOOLEAN": pa.bool_(),
    "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us", tz="UTC"),
    "DATETIME": pa.timestamp("us"),
}


def _bigquery_type(field: pa.Field) -> str:
    for predicate, bigquery_type in _ARROW_TO_BIGQUERY:
        if predicate(field.type):
            return bigquery_type
    raise ValueError(f"{field.name}: Arrow type {field.type} has no BigQuery column type here")


def arrow_to_bigquery_schema(schema: pa.Schema, *, explicit_mode: bool = False) -> BigQuerySchema:
    """Converts an Arrow schema to a BigQuery JSON schema, columns in order.

    Args:
        schema: The Arrow schema.
        explicit_mode: Write ``"mode": "NULLABLE"`` for nullable columns too;
            by default it is omitted (BigQuery's default). Non-nullable
            columns always get ``"mode": "REQUIRED"``.

    Returns:
        ``{"fields": [...]}``, each field's keys in the order name, type,
        mode, description.

    Raises:
        ValueError: A column's type has no BigQuery equivalent.
    """
    fields: list[BigQueryField] = []
    for field in schema:
        entry: BigQueryField = {"name": field.name, "type": _bigquery_type(field)}
        if not field.nullable:
            entry["mode"] = "REQUIRED"
        elif explicit_mode:
            entry["mode"] = "NULLABLE"
        description = (field.metadata or {}).get(DESCRIPTION_KEY)
        if description is not None:
            entry["description"] = description.decode("utf-8")
        fields.append(entry)
    return {"fields": fields}


def bigquery_to_arrow_schema(schema: Mapping[str, Any]) -> pa.Schema:
    """Converts a BigQuery JSON schema (``{"fields": [...]}``) to an Arrow schema.

    Args:
        schema: The parsed JSON, e.g. a generated ``*_bigquery_schema.json``.

    Returns:
        The Arrow schema, columns in order; a missing mode means nullable and
        a description lands in the field metadata under `DESCRIPTION_KEY`.

    Raises:
        ValueError: The schema is malformed, repeats a column, or has a
            column type or mode with no Arrow equivalent here.
    """
    fields = schema.get("fields")
    if not isinstance(fields, list):
        raise ValueError(f"BigQuery schema: expected {{'fields': [...]}}, got keys {list(schema)}")
    seen: set[str] = set()
    arrow_fields: list[pa.Field] = []
    for index, field in enumerate(fields):
        name = field.get("name") if isinstance(field, Mapping) else None
        if not isinstance(name, str) or not name:
            raise ValueError(f"BigQuery schema: field {index} has no name: {field!r}")
        if name in seen:
            raise ValueError(f"BigQuery schema: {name}: column appears twice")
        seen.add(name)
        bigquery_type = str(field.get("type", "")).upper()
        if bigquery_type not in _BIGQUERY_TO_ARROW:
            raise ValueError(f"BigQuery schema: {name}: unsupported type {field.get('type')!r}")
        mode = str(field.get("mode", "NULLABLE")).upper()
        if mode not in ("NULLABLE", "REQUIRED"):
            raise ValueError(f"BigQuery schema: {name}: unsupported mode {field.get('mode')!r}")
        description = field.get("description")
        metadata = {DESCRIPTION_KEY: str(description).encode("utf-8")} if description else None
        arrow_fields.append(
            pa.field(
                name,
                _BIGQUERY_TO_ARROW[bigquery_type],
                nullable=mode == "NULLABLE",
                metadata=metadata,
            )
        )
    return pa.schema(arrow_fields)


def bytes_columns(schema: pa.Schema) -> frozenset[str]:
    """The names of the columns that BigQuery stores as BYTES."""
    return frozenset(field.name for field in schema if _bigquery_type(field) == "BYTES")


def encode_bigquery_row(row: Mapping[str, Any], binary_columns: frozenset[str]) -> dict[str, Any]:
    """Makes a dict row JSON-ready for BigQuery: BYTES values become base64 text.

    Both of Beam's write methods send rows as JSON, where BigQuery expects
    BYTES base64-encoded; Beam itself would send the raw bytes as UTF-8.

    Args:
        row: The row.
        binary_columns: The BYTES columns (see `bytes_columns`).

    Returns:
        A new dict; other values are passed through unchanged.
    """
    return {
        key: (
            base64.b64encode(value).decode("ascii")
            if key in binary_columns and isinstance(value, bytes | bytearray)
            else value
        )
        for key, value in row.items()
    }
