"""Field declarations: thin wrappers over `attrs.field` that carry metadata."""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["DESCRIPTION", "DICOM", "METADATA_ONLY", "SOURCE", "column"]

DESCRIPTION = "datathon_etl.description"
"""Metadata key: the column's description, copied into every generated schema."""

SOURCE = "datathon_etl.source"
"""Metadata key: the column's name in the source files (CSV header), if any."""

METADATA_ONLY = "datathon_etl.metadata_only"
"""Metadata key: set on a label column that is not a target (never a model output)."""

DICOM = "datathon_etl.dicom"
"""Metadata key: the DICOM header attribute (keyword) the column is read from, if any."""


def column(
    description: str,
    *,
    source: str | None = None,
    target: bool = True,
    dicom: str | None = None,
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
        **kwargs: Passed on to `attrs.field` (``default=``, ...).

    Returns:
        An attrs field definition.
    """
    metadata: dict[str, Any] = {DESCRIPTION: description, SOURCE: source}
    if not target:
        metadata[METADATA_ONLY] = True
    if dicom is not None:
        metadata[DICOM] = dicom
    return attrs.field(metadata=metadata, **kwargs)
