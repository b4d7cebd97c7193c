"""Decoded views: beside a table of integer codes, a view with each code's name.

A coded column (an enum of the declaration: ``dataset``, ``view``, ``edema``)
is stored as an integer, as the original pipelines' schemas had it. Its
codes travel in the table's Arrow schema, in each such field's metadata
under `CODES_KEY` (a JSON object, code -> name, written by codegen into
``dataset.json``). From them `create_decoded_view` makes
``<table>_decoded`` beside the table, in DuckDB or BigQuery, the same
``SELECT`` in both: every coded column as its name (``dataset = 'train'``,
``edema = 'positive'``; NULL stays NULL), every other column as stored, in
the table's order. A view reads the table when queried, so it stays true
when a re-run replaces the table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping

import attrs
import duckdb
import pyarrow as pa

from datathon_etl.framework.tables.spec import (
    BigQueryTable,
    DuckDBTable,
    TableSpec,
    quote_identifier,
)

__all__ = [
    "CODES_KEY",
    "DECODED_SUFFIX",
    "codes_metadata",
    "create_decoded_view",
    "decoded_select",
    "decoded_view_spec",
    "field_codes",
]

CODES_KEY = b"codes"
"""Arrow field metadata key: a coded column's code -> name, as a JSON object."""

DECODED_SUFFIX = "_decoded"
"""A decoded view's name is its table's name and this."""


_NAME_RE = re.compile(r"^\w+$")
"""A code's name: an enum member's, so a SQL string literal needs no escape in either dialect."""


def codes_metadata(codes: Mapping[int, str]) -> str:
    """The `CODES_KEY` metadata value of a coded column (codes in value order).

    Raises:
        ValueError: A name is not a plain word (letters, digits, ``_``).
    """
    for name in codes.values():
        if not _NAME_RE.match(name):
            raise ValueError(f"code name {name!r}: not a plain word (letters, digits, '_')")
    return json.dumps({str(code): codes[code] for code in sorted(codes)})


def field_codes(field: pa.Field) -> dict[int, str] | None:
    """A field's code -> name, or None for a column that is not coded.

    Raises:
        ValueError: The metadata is not what `codes_metadata` writes.
    """
    text = (field.metadata or {}).get(CODES_KEY)
    if text is None:
        return None
    codes = {int(code): str(name) for code, name in json.loads(text).items()}
    codes_metadata(codes)  # the same names only
    return codes


def decoded_view_spec(table: TableSpec) -> TableSpec:
    """The decoded view of ``table``: beside it, named ``<table>_decoded``."""
    return attrs.evolve(table, table=table.table + DECODED_SUFFIX)


def decoded_select(schema: pa.Schema, source: str, quote: Callable[[str], str]) -> str | None:
    """The view's ``SELECT`` over ``source``, or None when no column is coded.

    Args:
        schema: The table's columns, coded ones with their `CODES_KEY` metadata.
        source: The table's name, quoted for the dialect.
        quote: Quotes a column name for the dialect.
    """
    if not any(field_codes(field) for field in schema):
        return None
    columns = []
    for field in schema:
        name = quote(field.name)
        codes = field_codes(field)
        if codes:
            cases = " ".join(f"WHEN {code} THEN '{label}'" for code, label in codes.items())
            columns.append(f"CASE {name} {cases} END AS {name}")
        else:
            columns.append(name)
    return "SELECT\n  " + ",\n  ".join(columns) + f"\nFROM {source}"


def _quote_bigquery(name: str) -> str:
    return f"`{name}`"


def create_decoded_view(table: TableSpec, schema: pa.Schema) -> TableSpec | None:
    """Creates or replaces the decoded view of a written table.

    Args:
        table: The table, which must exist (DuckDB or BigQuery).
        schema: Its Arrow schema, with the coded columns' codes.

    Returns:
        The view, or None when the table has no coded column (no view).

    Raises:
        ValueError: The view cannot be created (e.g. a table already has its name).
    """
    view = decoded_view_spec(table)
    if isinstance(table, DuckDBTable):
        select = decoded_select(schema, table.sql_name, quote_identifier)
        if select is None:
            return None
        try:
            with duckdb.connect(table.database) as con:
                con.execute(f"CREATE OR REPLACE VIEW {view.sql_name} AS {select}")
        except duckdb.Error as e:
            raise ValueError(f"cannot create the view {view}: {e}") from e
        return view
    assert isinstance(table, BigQueryTable)
    assert isinstance(view, BigQueryTable)
    select = decoded_select(schema, table.sql_name, _quote_bigquery)
    if select is None:
        return None
    # Imported here so DuckDB-only runs never load the BigQuery client.
    from google.api_core import exceptions
    from google.cloud import bigquery

    client = bigquery.Client(project=table.project)
    try:
        client.query(
            f"CREATE OR REPLACE VIEW {view.sql_name} AS {select}", project=table.project
        ).result()
    except exceptions.GoogleAPICallError as e:
        raise ValueError(f"cannot create the view {view}: {e}") from e
    return view
