"""Field declarations: thin wrappers over `attrs.field` that carry metadata."""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["DESCRIPTION", "SOURCE", "column"]

DESCRIPTION = "datathon_etl.description"
"""Metadata key: the column's description, copied into every generated schema."""

SOURCE = "datathon_etl.source"
"""Metadata key: the column's name in the source files (CSV header), if any."""


def column(description: str, *, source: str | None = None, **kwargs: Any) -> Any:
    """Declares a column of a dataset's key or label class.

    Args:
        description: What the column means; shown in every generated schema
            and in the data dictionary.
        source: The column's name in the source files, when it differs from
            the field name (e.g. ``"No Finding"`` for ``no_finding``).
        **kwargs: Passed on to `attrs.field` (``default=``, ...).

    Returns:
        An attrs field definition.
    """
    metadata = {DESCRIPTION: description, SOURCE: source}
    return attrs.field(metadata=metadata, **kwargs)
