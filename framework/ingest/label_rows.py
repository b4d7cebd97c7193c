"""CSV rows read as a data set declares them, with no hand-written parser.

A label row per image (`DeclaredLabelRows`): the image's path comes from the
declared path column (`Dataset.path_source`), its key from the layout's
``parse_path`` of that path, except key fields declared with ``source=``,
which are read from their own columns; the labels come from their declared
columns (those read from DICOM headers, ``dicom=``, later). A label row per
group and a per-image table's row (`DeclaredKeyedRows`): the layout's
``row_key`` joins it, its class's declared columns make its value. A layout
module that defines its own ``parse_label_row`` (extra checks between
columns), or a table with its own ``parse_row``, replaces these.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from datathon_etl.framework.schema import SourceRowError, parse_source_fields, parse_source_row
from datathon_etl.framework.schema.fields import DICOM, SOURCE

__all__ = ["DeclaredKeyedRows", "DeclaredLabelRows"]


@attrs.frozen
class DeclaredLabelRows:
    """An `IngestSpec.parse_label_row` built from the declaration.

    Attributes:
        dataset: The data set's name, for messages.
        path_column: The CSV column holding the image's path.
        parse_path: The layout's path -> key (raises ValueError).
        key_type: The declared key class.
        labels_type: The declared labels class.
    """

    dataset: str
    path_column: str
    parse_path: Callable[[str], Any]
    key_type: type
    labels_type: type

    def __call__(self, row: Mapping[str, str | None], where: str) -> tuple[Any, Any]:
        """Parses one row into (key, labels).

        Raises:
            SourceRowError: The path cell is blank, or a key or label cell
                does not parse.
            ValueError: The path does not parse (from ``parse_path``).
        """
        path = (row.get(self.path_column) or "").strip()
        if not path:
            raise SourceRowError(f"{self.dataset}: {where}", self.path_column, "missing or blank")
        key = self.parse_path(path)
        context = f"{self.dataset}: {where}: {path}"
        sourced = [f.name for f in attrs.fields(self.key_type) if f.metadata.get(SOURCE)]
        if sourced:
            key = attrs.evolve(key, **parse_source_fields(self.key_type, row, context, sourced))
        return key, parse_source_row(
            self.labels_type, _without_header(self.labels_type, row), context
        )


@attrs.frozen
class DeclaredKeyedRows:
    """Rows read as their class declares, keyed by the layout's ``row_key``.

    What a per-image table declared with `ImageTable.declared` and the label
    rows of a data set labelled per group without its own ``parse_label_row``
    are parsed by: ``(row_key(row), the row_type instance)``.

    Attributes:
        dataset: The data set's name, for messages.
        row_key: The layout's row -> join key (an image's path, a group).
        row_type: The attrs class a row is read into.
    """

    dataset: str
    row_key: Callable[[Mapping[str, str | None]], str]
    row_type: type

    def __call__(self, row: Mapping[str, str | None], where: str) -> tuple[str, Any]:
        """Parses one row into (its join key, its value).

        Raises:
            ValueError: The id cells do not give a key (from ``row_key``).
            SourceRowError: A cell does not parse.
        """
        key = self.row_key(row)
        cells = _without_header(self.row_type, row)
        return key, parse_source_row(self.row_type, cells, f"{self.dataset}: {where}: {key}")


def _without_header(cls: type, row: Mapping[str, str | None]) -> dict[str, str | None]:
    """The row less the cells of fields read from DICOM headers: those keep their defaults."""
    header = {f.name for f in attrs.fields(cls) if f.metadata.get(DICOM)}
    return {name: text for name, text in row.items() if name not in header}
