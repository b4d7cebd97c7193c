"""Table specs: one string names a table in BigQuery or in a DuckDB file.

Three forms are accepted, tried in this order:

* ``project:dataset.table`` or ``project.dataset.table``: a BigQuery table.
  The project may be domain-scoped (``example.com:project``).
* ``path/to/file.duckdb:table_name``: a table in a DuckDB database file. The
  path may be any local path; the table name is a plain SQL identifier.
* ``table_name``: a table in the DuckDB file the caller names as the default
  (pipelines pass ``<output_dir>/tables.duckdb``).

Anything else is refused with a ``ValueError`` that lists the forms. A DuckDB
table name never contains a dot, so ``a.b.c`` is always BigQuery and a
schema-qualified DuckDB name (``file.duckdb:main.t``) is refused rather than
misread.
"""

from __future__ import annotations

import re

import attrs

__all__ = [
    "BigQueryTable",
    "DuckDBTable",
    "TableSpec",
    "parse_table_spec",
    "quote_identifier",
]

# GCP project ids: 6 to 30 characters, lower-case letters, digits and dashes,
# starting with a letter; legacy projects carry a ``domain:`` prefix.
_PROJECT = r"(?:[a-z0-9][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]"
# BigQuery allows Unicode letters in dataset and table names; ``\w`` is Unicode.
_DATASET = r"\w{1,1024}"
_TABLE = r"[\w$-]{1,1024}"
_BIGQUERY_RE = re.compile(
    rf"^(?P<project>{_PROJECT})[:.](?P<dataset>{_DATASET})\.(?P<table>{_TABLE})$"
)
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_FORMS = (
    "expected 'project:dataset.table' or 'project.dataset.table' (BigQuery), "
    "'path/to/file.duckdb:table_name' or a bare 'table_name' (DuckDB)"
)


@attrs.frozen
class BigQueryTable:
    """A BigQuery table.

    Attributes:
        project: The GCP project id (possibly ``domain:project``).
        dataset: The BigQuery dataset.
        table: The table name.
    """

    project: str
    dataset: str
    table: str

    @property
    def beam_spec(self) -> str:
        """The ``project:dataset.table`` form that Beam's BigQuery IO expects."""
        return f"{self.project}:{self.dataset}.{self.table}"

    @property
    def sql_name(self) -> str:
        """The name quoted for GoogleSQL, in backticks: project.dataset.table."""
        return f"`{self.project}.{self.dataset}.{self.table}`"

    def __str__(self) -> str:
        return self.beam_spec


@attrs.frozen
class DuckDBTable:
    """A table in a DuckDB database file.

    Attributes:
        database: The path of the DuckDB file (created on first write).
        table: The table name, a plain SQL identifier.
    """

    database: str
    table: str

    @property
    def sql_name(self) -> str:
        """The table name quoted as a DuckDB identifier."""
        return quote_identifier(self.table)

    def __str__(self) -> str:
        return f"{self.database}:{self.table}"


TableSpec = BigQueryTable | DuckDBTable
"""Either kind of table; `parse_table_spec` returns one."""


def quote_identifier(name: str) -> str:
    """Quotes a SQL identifier for DuckDB (double quotes, doubled inside)."""
    return '"' + name.replace('"', '""') + '"'


def parse_table_spec(spec: str, *, default_database: str | None = None) -> TableSpec:
    """Parses a table spec string (see the module docstring for the forms).

    Args:
        spec: The spec, e.g. ``my-project:labels.mimic_cxr`` or
            ``out/tables.duckdb:mimic_cxr`` or ``mimic_cxr``.
        default_database: The DuckDB file a bare table name lives in. Without
            it a bare name is an error.

    Returns:
        A `BigQueryTable` or a `DuckDBTable`.

    Raises:
        ValueError: The spec matches none of the forms.
    """
    text = spec.strip()
    if not text:
        raise ValueError(f"table spec {spec!r}: empty; {_FORMS}")
    match = _BIGQUERY_RE.match(text)
    if match:
        return BigQueryTable(match["project"], match["dataset"], match["table"])
    if ":" in text:
        database, _, table = text.rpartition(":")
        if not database:
            raise ValueError(f"table spec {spec!r}: no DuckDB file before ':'; {_FORMS}")
        if not _IDENTIFIER_RE.match(table):
            raise ValueError(
                f"table spec {spec!r}: {table!r} is not a valid table name "
                f"(letters, digits and '_', not starting with a digit); {_FORMS}"
            )
        return DuckDBTable(database, table)
    if _IDENTIFIER_RE.match(text):
        if default_database is None:
            raise ValueError(
                f"table spec {spec!r}: a bare table name needs a default DuckDB file, "
                f"and none was given; {_FORMS}"
            )
        return DuckDBTable(default_database, text)
    raise ValueError(f"table spec {spec!r}: not a table spec; {_FORMS}")
