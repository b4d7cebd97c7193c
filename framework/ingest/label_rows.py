"""Label CSV rows read as a data set declares them, with no hand-written parser.

The image's path comes from the declared path column (`Dataset.path_source`),
its key from the layout's ``parse_path`` of that path, except key fields
declared with ``source=``, which are read from their own columns; the labels
come from their declared columns (those read from DICOM headers, ``dicom=``,
later). A layout module that defines its own
``parse_label_row`` (extra checks between columns) replaces this.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from datathon_etl.framework.schema import SourceRowError, parse_source_fields, parse_source_row
from datathon_etl.framework.schema.fields import DICOM, SOURCE

__all__ = ["DeclaredLabelRows"]


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
        # Labels read from DICOM headers keep their defaults here, whatever the CSV holds.
        header = {f.name for f in attrs.fields(self.labels_type) if f.metadata.get(DICOM)}
        cells = {name: text for name, text in row.items() if name not in header}
        return key, parse_source_row(self.labels_type, cells, context)
