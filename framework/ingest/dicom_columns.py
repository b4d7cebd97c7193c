"""Declared DICOM header attributes -> the key and label fields that hold them.

A data set declares a column with ``column(..., dicom="ViewPosition")``; the
ingestion asks the image transform for exactly those attributes (nothing else
of a header leaves `framework.images.dicom`) and fills the example's key and
labels with them once its image is read. A header attribute is read as a CSV
cell is (`parse_source_fields`): typed by the one type table, an enum's
``from_source`` parses its codes, an empty value is null for an ``X | None``
column. An attribute the file lacks reads as an empty value: null, ``""`` for
a ``str``, the enum's blank code; a column that cannot be blank refuses the
image as ``missing_dicom_attribute``. A column declared with ``dicom_value=``
holds one value of a multi-valued attribute (``PixelSpacing``'s row
spacing); a file with fewer values reads as an empty value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from datathon_etl.framework.images import ImageError
from datathon_etl.framework.quarantine import Reason
from datathon_etl.framework.schema import SourceRowError, parse_source_fields
from datathon_etl.framework.schema.fields import DICOM, DICOM_VALUE

__all__ = ["DicomColumns"]


Declared = tuple[tuple[str, str, int | None], ...]
"""(field, keyword, which value or None for all) of each ``dicom=`` field."""


def _declared(cls: type | None) -> Declared:
    """The ``dicom=`` fields of an attrs class."""
    if cls is None or not attrs.has(cls):
        return ()
    return tuple(
        (f.name, f.metadata[DICOM], f.metadata.get(DICOM_VALUE))
        for f in attrs.fields(cls)
        if f.metadata.get(DICOM)
    )


def _value(text: str | None, index: int | None) -> str | None:
    """One value of a backslash-joined text (None when it has fewer), or all of it."""
    if text is None or index is None:
        return text
    values = text.split("\\")
    return values[index].strip() if index < len(values) else None


@attrs.frozen
class DicomColumns:
    """The ``dicom=`` fields of a data set's key and labels classes.

    Attributes:
        key_type: The key class.
        labels_type: The labels class.
        key_fields: (field, keyword, value) of its key fields read from the header.
        label_fields: Likewise for its label fields.
    """

    key_type: type
    labels_type: type
    key_fields: Declared
    label_fields: Declared

    @classmethod
    def of(cls, key_type: type | None, labels_type: type | None) -> DicomColumns | None:
        """The declared columns, or None when the data set declares none."""
        key_fields, label_fields = _declared(key_type), _declared(labels_type)
        if key_type is None or labels_type is None or not (key_fields or label_fields):
            return None
        return cls(key_type, labels_type, key_fields, label_fields)

    @property
    def keywords(self) -> tuple[str, ...]:
        """The attributes to read, each once, in declaration order."""
        return tuple(dict.fromkeys(k for _, k, _ in (*self.key_fields, *self.label_fields)))

    def fill(self, key: Any, labels: Any, texts: Sequence[str | None]) -> tuple[Any, Any]:
        """The key and labels with their header fields set from ``texts``.

        Args:
            key: The example's key (header fields at their defaults).
            labels: Its labels (likewise).
            texts: The header's text of each of `keywords`, None if absent.

        Raises:
            ImageError: MISSING_DICOM_ATTRIBUTE (absent or empty where the
                column needs a value), UNKNOWN_CODE (outside an enum's codes)
                or BAD_DICOM_ATTRIBUTE (a value of the wrong type).
        """
        by_keyword = dict(zip(self.keywords, texts, strict=True))
        return (
            self._evolve(self.key_type, key, self.key_fields, by_keyword),
            self._evolve(self.labels_type, labels, self.label_fields, by_keyword),
        )

    @staticmethod
    def _evolve(
        cls: type,
        value: Any,
        fields: Declared,
        texts: dict[str, str | None],
    ) -> Any:
        if not fields:
            return value
        read = {name: _value(texts[keyword], index) for name, keyword, index in fields}
        row = {name: text or "" for name, text in read.items()}
        try:
            values = parse_source_fields(cls, row, "DICOM header", list(row))
        except SourceRowError as error:
            name = error.column  # a dicom= field has no source=: its column is its name
            keyword, index = next((k, i) for field, k, i in fields if field == name)
            if index is not None:
                keyword = f"{keyword} value {index}"
            text = read[name]
            if not (text or "").strip():
                why = "absent" if text is None else "empty"
                raise ImageError(
                    Reason.MISSING_DICOM_ATTRIBUTE,
                    f"{keyword} is {why}; the {name} column cannot be blank",
                ) from error
            reason = Reason.UNKNOWN_CODE if error.unknown_code else Reason.BAD_DICOM_ATTRIBUTE
            raise ImageError(reason, f"{keyword} ({name}): {error.problem}") from error
        return attrs.evolve(value, **values)
