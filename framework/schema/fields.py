"""Field declarations: thin wrappers over `attrs.field` that carry metadata."""

from __future__ import annotations

from typing import Any

import attrs

__all__ = [
    "DESCRIPTION",
    "DICOM",
    "DICOM_VALUE",
    "FLAGS",
    "METADATA_ONLY",
    "SOURCE",
    "MultiValued",
    "column",
]

DESCRIPTION = "datathon_etl.description"
"""Metadata key: the column's description, copied into every generated schema."""

SOURCE = "datathon_etl.source"
"""Metadata key: the column's name in the source files (CSV header), if any."""

METADATA_ONLY = "datathon_etl.metadata_only"
"""Metadata key: set on a label column that is not a target (never a model output)."""

DICOM = "datathon_etl.dicom"
"""Metadata key: the DICOM header attribute (keyword) the column is read from, if any."""
DICOM_VALUE = "datathon_etl.dicom_value"
"""Metadata key: which value of a multi-valued DICOM attribute the column holds (0: the first)."""

FLAGS = "datathon_etl.flags"
"""Metadata key: on a ``bool`` label, ``(MultiValued, value)``: the value it flags."""


def column(
    description: str,
    *,
    source: str | None = None,
    target: bool = True,
    dicom: str | None = None,
    dicom_value: int | None = None,
    **kwargs: Any,
) -> Any:
    """Declares a column of a dataset's key or label class.

    Args:
        description: What the column means; shown in every generated schema
            and in the data dictionary.
        source: The column's name in the source files, when it differs from
            the field name (e.g. ``"No Finding"`` for ``no_finding``). On a
            key field it means the value comes from that column of the label
            CSV rather than from the image's path.
        target: For a label field: whether it is a target (a model output,
            in the predictions table, scored by ``evaluate``). False makes it
            metadata (age, sex, ...): kept in the labels table and the
            TFRecords, never a model output. Key fields are never targets.
        dicom: The keyword of a DICOM header attribute (``"ViewPosition"``)
            the value is read from, in the image's own file, once it is
            read; the field needs a ``default=`` until then. Only attributes
            declared so are ever read from a header.
        dicom_value: With ``dicom``, for an attribute that holds several
            values (``PixelSpacing``: row spacing, then column spacing):
            which one the column holds, 0 for the first; a file with fewer
            values reads as a blank cell. Without it, every value is read,
            joined by a backslash, as one text.
        **kwargs: Passed on to `attrs.field` (``default=``, ...).

    Returns:
        An attrs field definition.
    """
    metadata = _metadata(description, source, target)
    if dicom is not None:
        metadata[DICOM] = dicom
    if dicom_value is not None:
        metadata[DICOM_VALUE] = dicom_value
    return attrs.field(metadata=metadata, **kwargs)


def _metadata(description: str, source: str | None, target: bool) -> dict[str, Any]:
    metadata: dict[str, Any] = {DESCRIPTION: description, SOURCE: source}
    if not target:
        metadata[METADATA_ONLY] = True
    return metadata


@attrs.frozen
class MultiValued:
    """A source column whose cells list several values (multi-hot), declared once.

    NIH ChestX-ray14's ``Finding Labels`` holds ``Cardiomegaly|Emphysema`` or
    ``No Finding``: one ``bool`` label per value, each declared with `flag`.
    A cell listing a value no label flags is refused (``unknown_code``), as
    is one listing a value twice or, unless `blank_is_none`, a blank cell
    (``bad_label_row``); no parser is written by hand.

    Attributes:
        source: The column's name in the source files.
        separator: What separates the values in a cell (``"|"``); spaces
            around each value are ignored.
        blank_is_none: Whether a blank cell lists no value (every flag
            false); by default it is a bad row.
    """

    source: str
    separator: str
    blank_is_none: bool = False

    def flag(self, value: str, description: str, *, target: bool = True) -> Any:
        """Declares a ``bool`` label: true when the cell lists ``value``.

        Args:
            value: The value as the source writes it (``"Pleural_Thickening"``).
            description: What the label means.
            target: Whether it is a model output (see `column`).

        Returns:
            An attrs field definition.
        """
        metadata = _metadata(description, self.source, target)
        metadata[FLAGS] = (self, value)
        return attrs.field(metadata=metadata)
