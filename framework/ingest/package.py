"""A generated package's `IngestSpec`: its declarations and its layout module.

The generated ``ingest.py`` passes its data set's layout module, typed by
the protocol it follows (mypy checks it there; codegen checks it too), and
``dataset.json`` says which protocol that is and what the label CSVs hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import attrs

from datathon_etl.framework.ingest.label_rows import DeclaredKeyedRows, DeclaredLabelRows
from datathon_etl.framework.ingest.leakage import LeakageCheck
from datathon_etl.framework.ingest.pipeline import run
from datathon_etl.framework.ingest.spec import (
    GroupLabels,
    ImageTable,
    ImageTables,
    IngestSpec,
    SplitLists,
)
from datathon_etl.framework.schema.layout import GroupLayout, Layout, RowParser, TablesLayout
from datathon_etl.framework.schema.package import DatasetPackage, Main, entry_point, load_package
from datathon_etl.framework.schema.rows import labels_row

__all__ = ["command", "ingest_spec"]


def _group_labels(layout: GroupLayout) -> GroupLabels:
    """The `GroupLabels` of a `GroupLayout` (its fields in order)."""
    return GroupLabels(
        layout.LABELS_PER,
        layout.group_of,
        layout.NO_LABELS,
        layout.LABEL_SOURCES,
        layout.ImagePath,
    )


def _parsed(dataset: str, row_key: Any, table: ImageTable) -> ImageTable:
    """The table, with `DeclaredKeyedRows` as its parser if it declares none."""
    if table.parse_row is not None:
        return table
    assert table.row_type is not None, f"{dataset}: table {table.name}: no parser, no row type"
    return attrs.evolve(table, parse_row=DeclaredKeyedRows(dataset, row_key, table.row_type))


def _leakage(evaluation: Mapping[str, Any]) -> LeakageCheck | None:
    """The declared patient and split columns (``dataset.json``'s evaluation section)."""
    if evaluation["patient"] is None or evaluation["split"] is None:
        return None
    names = {code: name for name, code in evaluation["splits"].items()}
    return LeakageCheck(evaluation["patient"], evaluation["split"], names)


def ingest_spec(package: DatasetPackage, layout: Layout) -> IngestSpec:
    """The ingestion spec of a generated package's data set.

    Args:
        package: Its declarations (``ingest`` is set: the data set has a layout).
        layout: Its layout module.
    """
    declared = package.ingest
    assert declared is not None, f"{package.name}: no layout, no ingest"
    features = package.features
    csv_columns: tuple[str, ...] = tuple(declared["csv_columns"])
    group_labels = None
    if declared["labels_per"] != "image":
        grouped = cast(GroupLayout, layout)
        csv_columns = (*grouped.LABEL_KEY_COLUMNS, *csv_columns)
        group_labels = _group_labels(grouped)
    image_tables = None
    if hasattr(layout, "TABLES"):
        tabled = cast(TablesLayout, layout)
        image_tables = ImageTables(
            tuple(_parsed(package.name, tabled.row_key, t) for t in tabled.TABLES),
            tabled.image_key,
            tabled.row_key,
        )
    parse_label_row: Any
    if declared["parses_rows"]:
        parse_label_row = cast(RowParser, layout).parse_label_row
    elif group_labels is not None:
        row_key = cast(GroupLayout, layout).row_key
        parse_label_row = DeclaredKeyedRows(package.name, row_key, features.labels_type)
    else:
        parse_label_row = DeclaredLabelRows(
            package.name,
            declared["path_column"],
            layout.parse_path,
            features.key_type,
            features.labels_type,
        )
    split_lists = declared.get("split_lists")
    return IngestSpec(
        dataset=package.name,
        parse_path=layout.parse_path,
        format_path=layout.format_path,
        parse_label_row=parse_label_row,
        csv_columns=csv_columns,
        path_column=declared["path_column"],
        partition=layout.partition,
        partitions=layout.PARTITIONS,
        image_feature=features.image_feature,
        encode=features.encode,
        labels_row=labels_row,
        labels_schema=package.labels_schema,
        labels_bigquery_schema=package.labels_bigquery_schema,
        feature_specs=features.specs,
        features_module=f"{package.package}.features",
        key_type=features.key_type,
        labels_type=features.labels_type,
        declaration=package.declaration,
        split_lists=SplitLists(
            split_lists["field"], tuple((name, code) for name, code in split_lists["files"])
        )
        if split_lists
        else None,
        group_labels=group_labels,
        image_tables=image_tables,
        leakage=_leakage(package.evaluation),
    )


def command(package: str | None, layout: Layout) -> tuple[IngestSpec, Main]:
    """A generated package's ``ingest``: (its spec, its ``main``)."""
    return entry_point(ingest_spec(load_package(package), layout), run)
