"""What a card describes: a data set's name, its labels table's columns and their roles.

A data set's ingestion names its declaration in the manifest (`DECLARATION`),
which says everything: the split, view, patient and study columns, coded
labels, descriptions. ``images-to-tfrecord`` has no declaration: its
manifest records the label query's columns and their storage types
(`LABELS_COLUMNS`), and the card describes those, none with a role.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import attrs

from datathon_etl.framework.manifest import Manifest
from datathon_etl.framework.schema import Column, Dataset, DatasetIR, read_dataset
from datathon_etl.framework.schema.ir import Table
from datathon_etl.framework.schema.types import SCALAR_TYPES

__all__ = ["DECLARATION", "LABELS_COLUMNS", "Subject", "coded", "describe", "labels_columns"]

DECLARATION = "declaration"
"""Manifest parameter: the import path of the data set's declaration (its ``DATASET``)."""
LABELS_COLUMNS = "labels_columns"
"""Manifest parameter (``images-to-tfrecord``): ``[{"name", "type", "nullable"}]``, ``path``
first, ``type`` a `SCALAR_TYPES` name (``int``, ``float``, ``str``, ``bytes``, ``bool``)."""
PATH_DESCRIPTION = "The image's path, relative to the --input_prefix folder it was listed in."


@attrs.frozen
class Subject:
    """What the card describes.

    Attributes:
        name: The data set's (or the run's) name.
        description: One paragraph about it.
        labels_table: The labels table's name, description and columns (the dictionary).
        table: The table to query (``file.duckdb:table`` or BigQuery's), None
            when the run wrote none.
        split: The column holding the split, if declared.
        view: The column holding the view, if declared.
        patient: The column naming the patient, if declared.
        study: The column naming the study, if declared.
        coded: The coded columns (enums, booleans): their values per split.
        described: The other columns whose values are worth a distribution.
    """

    name: str
    description: str
    labels_table: Table
    table: str | None
    split: Column | None = None
    view: Column | None = None
    patient: Column | None = None
    study: Column | None = None
    coded: tuple[Column, ...] = ()
    described: tuple[Column, ...] = ()


def coded(column: Column) -> bool:
    """Whether a column's values are codes (an enum or a boolean)."""
    return column.enum is not None or column.type.name == "bool"


def describe(manifest: Manifest) -> Subject:
    """The subject of the run of ``manifest``: its declaration's, or its label query's.

    Raises:
        ValueError: The manifest names neither (not an ingestion's), or the
            declaration does not import.
    """
    parameters = manifest.parameters
    if parameters.get(DECLARATION):
        return _declared(_load_declaration(str(parameters[DECLARATION])), parameters)
    if parameters.get(LABELS_COLUMNS):
        return _queried(manifest)
    raise ValueError(
        f"the manifest of {manifest.pipeline!r} names no data set declaration "
        f"({DECLARATION!r}) nor label columns: only an ingestion or images-to-tfrecord "
        "run has a card; re-run it"
    )


def _load_declaration(module: str) -> DatasetIR:
    try:
        dataset = importlib.import_module(module).DATASET
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot read the declaration {module}: {e}") from e
    if not isinstance(dataset, Dataset):
        raise ValueError(f"{module}.DATASET is not a Dataset")
    return read_dataset(dataset, module)


def _declared(ir: DatasetIR, parameters: Any) -> Subject:
    roles = {c.name for c in (ir.split, ir.view, ir.patient, ir.study) if c is not None}
    described = [c for c in ir.key.columns if c.name not in roles]
    described += [c for c in ir.labels.columns if not coded(c)]
    return Subject(
        name=ir.name,
        description=ir.description,
        labels_table=ir.labels_table,
        table=str(parameters.get("output_table") or ir.labels_table.name),
        split=ir.split,
        view=ir.view,
        patient=ir.patient,
        study=ir.study,
        coded=tuple(c for c in ir.labels.columns if coded(c)),
        described=tuple(described),
    )


def labels_columns(names_types: Sequence[tuple[str, str, bool]]) -> list[dict[str, Any]]:
    """The `LABELS_COLUMNS` parameter: (name, `SCALAR_TYPES` name, nullable) per column."""
    return [{"name": n, "type": t, "nullable": nullable} for n, t, nullable in names_types]


def _queried(manifest: Manifest) -> Subject:
    parameters = manifest.parameters
    types = {scalar.name: scalar for scalar in SCALAR_TYPES.values()}
    columns = tuple(
        Column(
            str(c["name"]),
            types[str(c["type"])],
            PATH_DESCRIPTION if c["name"] == "path" else "A column of the label query.",
            nullable=bool(c["nullable"]),
        )
        for c in parameters[LABELS_COLUMNS]
    )
    labels = [c for c in columns if c.name != "path"]
    table = parameters.get("output_table")
    prefixes = ", ".join(parameters.get("input_prefix") or ())
    return Subject(
        name=manifest.pipeline,
        description=(
            f"Images listed under {prefixes}, labelled by the rows of a query, resized and "
            f"written as TFRecords to {parameters.get('output_tfrecord_dir')}."
        ),
        labels_table=Table(
            str(table) if table else "(no labels table: the TFRecords' features)",
            "One row per image written: its path, then the label query's columns.",
            columns,
        ),
        table=str(table) if table else None,
        coded=tuple(c for c in labels if coded(c)),
        described=tuple(c for c in labels if not coded(c) and c.type.name != "bytes"),
    )
