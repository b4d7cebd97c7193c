"""Examples -> table rows, model outputs -> prediction rows: each generated ``rows.py``'s logic.

A data set's ``dataset.json`` declares its columns (``rows``); its generated
``rows.py`` binds these functions and its `RowMappers`; `infer` and the
ingestion's table sink call them through it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from datathon_etl.framework.schema.convert import to_row
from datathon_etl.framework.schema.example import Example

__all__ = ["RowMappers", "ids_row", "labels_row"]


def labels_row(example: Example[Any, Any]) -> dict[str, Any]:
    """Returns the labels table's row of one example: its key, ``path``, its labels."""
    return to_row(example.key, {"path": example.path}, example.labels)


def ids_row(example: Example[Any, Any]) -> dict[str, Any]:
    """Returns the id columns of one example: its key and ``path``."""
    return to_row(example.key, {"path": example.path})


@attrs.frozen
class RowMappers:
    """A data set's columns, and its predictions rows: ids, then one logit per target label.

    Attributes:
        dataset: The data set's name (in errors).
        id_columns: The columns that identify an image, in both tables.
        label_columns: One per label (targets and metadata), in the labels
            table's order.
        target_columns: One per target label, in the model output's order.
    """

    dataset: str
    id_columns: tuple[str, ...]
    label_columns: tuple[str, ...]
    target_columns: tuple[str, ...]

    def prediction_row(self, ids: Mapping[str, Any], output: Sequence[float]) -> dict[str, Any]:
        """Returns the predictions table's row of one image.

        Raises:
            ValueError: The model output does not have exactly one value per target.
        """
        if len(output) != len(self.target_columns):
            raise ValueError(
                f"{self.dataset}: the model outputs {len(output)} values per image, but the "
                f"dataset has {len(self.target_columns)} target labels "
                f"({', '.join(self.target_columns)})"
            )
        row = {name: ids[name] for name in self.id_columns}
        row.update(
            (name, float(value)) for name, value in zip(self.target_columns, output, strict=True)
        )
        return row
