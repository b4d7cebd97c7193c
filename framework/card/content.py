"""What a data card says, gathered from a run's outputs: everything the page shows, as data.

`gather` reads the manifest and the quarantine, runs the statistics over the
labels table, draws the charts and makes the thumbnails; the page template
(`datathon_etl.framework.card.page`) only lays it out. Values are named
here, from the data set's declaration: codes by their enum names, NULL as
``null``.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Sequence
from typing import Any

import attrs

from datathon_etl.framework.card import charts, stats
from datathon_etl.framework.card.run_files import (
    QuarantineSummary,
    read_manifest,
    read_quarantine,
)
from datathon_etl.framework.card.tables import QueryTable, open_table
from datathon_etl.framework.card.thumbnails import thumbnail_uri
from datathon_etl.framework.images.formats import ImageFormat, tree_path
from datathon_etl.framework.manifest import TFRECORD_SHARDS, Manifest
from datathon_etl.framework.schema import Column, Dataset, DatasetIR, read_dataset
from datathon_etl.framework.tables import parse_table_spec

__all__ = [
    "DECLARATION",
    "MAX_CHARTED_VALUES",
    "THUMBNAILS_PER_GROUP",
    "Card",
    "CodeTable",
    "Distribution",
    "Thumbnails",
    "gather",
]

DECLARATION = "declaration"
"""Manifest parameter: the import path of the data set's declaration (its ``DATASET``)."""
THUMBNAILS_PER_GROUP = 6
"""Thumbnails per split and view."""
MAX_CHARTED_VALUES = 30
"""A column with more distinct values is described by their number, not charted."""
_RUN_PARAMETERS = ("run", "inputs", DECLARATION, TFRECORD_SHARDS)
"""Parameters the card shows in sections of their own."""


@attrs.frozen
class CodeTable:
    """Counts of each value of several columns, per split: a table and a chart.

    Attributes:
        split: The split's name (None: all rows).
        columns: The columns, in order.
        codes: The value names, in order (``null`` last).
        counts: column -> value name -> rows.
        chart: The stacked-shares chart.
    """

    split: str | None
    columns: tuple[str, ...]
    codes: tuple[str, ...]
    counts: dict[str, dict[str, int]]
    chart: charts.Chart


@attrs.frozen
class Distribution:
    """One declared column's distribution.

    Attributes:
        column: The column.
        description: Its declared description.
        splits: The split names (the table's column order).
        values: (value name, rows per split) in order, when charted.
        chart: The chart, when charted.
        note: Why it is not charted (too many distinct values), if so.
    """

    column: str
    description: str
    splits: tuple[str, ...] = ()
    values: tuple[tuple[str, tuple[int, ...]], ...] = ()
    chart: charts.Chart | None = None
    note: str = ""


@attrs.frozen
class Thumbnails:
    """The thumbnails of one split and view.

    Attributes:
        split: The split's name.
        view: The view's name (``all`` when no view is declared).
        images: (path, data URI) in path order.
    """

    split: str
    view: str
    images: tuple[tuple[str, str], ...]


@attrs.frozen
class Card:
    """Everything a data card shows (see the module docstring)."""

    dataset: DatasetIR
    manifest: Manifest
    table: str
    run: dict[str, Any]
    inputs: tuple[dict[str, Any], ...]
    parameters: dict[str, str]
    shards: dict[str, int]
    splits: tuple[str, ...]
    views: tuple[str, ...]
    counts: tuple[stats.GroupCounts, ...]
    split_totals: tuple[stats.GroupCounts, ...]
    total: stats.GroupCounts | None
    counts_chart: charts.Chart
    prevalence: tuple[CodeTable, ...]
    distributions: tuple[Distribution, ...]
    leakage: stats.Leakage | None
    quarantine: QuarantineSummary
    thumbnails: tuple[Thumbnails, ...]
    thumbnails_note: str
    pixel_sizes_note: str


def load_declaration(manifest: Manifest) -> DatasetIR:
    """The data set's declaration named by the manifest, read.

    Raises:
        ValueError: The manifest names none (not an ingestion's), or it does not import.
    """
    module = manifest.parameters.get(DECLARATION)
    if not module:
        raise ValueError(
            f"the manifest of {manifest.pipeline!r} names no data set declaration "
            f"({DECLARATION!r}): only a data set's ingestion has a card; re-run it"
        )
    try:
        dataset = importlib.import_module(module).DATASET
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot read the declaration {module}: {e}") from e
    if not isinstance(dataset, Dataset):
        raise ValueError(f"{module}.DATASET is not a Dataset")
    return read_dataset(dataset, module)


def value_name(column: Column | None, value: Any) -> str:
    """A stored value as the card shows it: a code's name, ``true``/``false``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if column is not None and column.enum is not None:
        for code in column.enum.codes:
            if code.value == value:
                return code.name
    return str(value)


def _code_names(column: Column) -> list[str]:
    if column.enum is not None:
        names = [code.name for code in column.enum.codes]
    else:
        names = ["false", "true"]
    return [*names, "null"] if column.nullable else names


def _coded(column: Column) -> bool:
    return column.enum is not None or column.type.name == "bool"


def gather(output_dir: str, *, images: bool = True) -> Card:
    """Reads a run's outputs and computes everything its card shows.

    Args:
        output_dir: The run's ``--output_dir``.
        images: Whether to make thumbnails of the resized images.

    Raises:
        ValueError: No manifest, no declaration, or no labels table.
    """
    manifest = read_manifest(output_dir)
    ir = load_declaration(manifest)
    parameters = manifest.parameters
    table_spec = parse_table_spec(
        str(parameters.get("output_table") or ir.labels_table.name),
        default_database=f"{output_dir}/tables.duckdb",
    )
    with open_table(table_spec) as table:
        return _gather(output_dir, manifest, ir, table, str(table_spec), images=images)


def _gather(
    output_dir: str,
    manifest: Manifest,
    ir: DatasetIR,
    table: QueryTable,
    table_name: str,
    *,
    images: bool,
) -> Card:
    split, view = ir.split, ir.view
    patient = ir.patient.name if ir.patient else None
    study = ir.study.name if ir.study else None
    grouping = [c for c in (split, view) if c is not None]
    counts = [
        attrs.evolve(g, group=_split_view(split, view, g.group))
        for g in stats.group_counts(table, [c.name for c in grouping], patient=patient, study=study)
    ]
    split_totals = (
        [
            attrs.evolve(g, group=(value_name(split, g.group[0]),))
            for g in stats.group_counts(table, [split.name], patient=patient, study=study)
        ]
        if split
        else []
    )
    total = next(iter(stats.group_counts(table, [], patient=patient, study=study)), None)
    splits = _present(split, {g.group[0] for g in counts})
    views = _present(view, {g.group[1] for g in counts})
    parameters = {
        key: value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        for key, value in sorted(manifest.parameters.items())
        if key not in _RUN_PARAMETERS
    }
    return Card(
        dataset=ir,
        manifest=manifest,
        table=table_name,
        run=dict(manifest.parameters.get("run") or {}),
        inputs=tuple(manifest.parameters.get("inputs") or ()),
        parameters=parameters,
        shards=dict(manifest.parameters.get(TFRECORD_SHARDS) or {}),
        splits=splits,
        views=views,
        counts=tuple(counts),
        split_totals=tuple(split_totals),
        total=total,
        counts_chart=_counts_chart(counts, splits, views),
        prevalence=tuple(_prevalence(table, ir)),
        distributions=tuple(_distributions(table, ir)),
        leakage=_leakage(table, patient, split),
        quarantine=read_quarantine(output_dir),
        thumbnails=tuple(_thumbnails(table, manifest, ir)) if images else (),
        thumbnails_note=_thumbnails_note(manifest, images),
        pixel_sizes_note=(
            "The sources' pixel sizes are not recorded by the ingestion (neither in the "
            "manifest nor in the tables), so the card cannot show their distribution."
        ),
    )


def _split_view(split: Column | None, view: Column | None, group: Sequence[Any]) -> tuple[str, str]:
    """A group of the declared split and view columns, named; ``all`` for one not declared."""
    values = iter(group)
    return (
        value_name(split, next(values)) if split else "all",
        value_name(view, next(values)) if view else "all",
    )


def _leakage(table: QueryTable, patient: str | None, split: Column | None) -> stats.Leakage | None:
    if patient is None or split is None:
        return None
    found = stats.leakage(table, patient=patient, split=split.name)
    named = tuple((p, tuple(value_name(split, s) for s in ss)) for p, ss in found.named)
    return attrs.evolve(found, named=named)


def _present(column: Column | None, names: set[str]) -> tuple[str, ...]:
    """The value names found, in code order for a coded column."""
    if column is not None and column.enum is not None:
        return tuple(code.name for code in column.enum.codes if code.name in names)
    return tuple(sorted(names))


def _counts_chart(
    counts: Sequence[stats.GroupCounts], splits: Sequence[str], views: Sequence[str]
) -> charts.Chart:
    images = {g.group: g.images for g in counts}
    series = {s: [images.get((s, v), 0) for v in views] for s in splits}
    return charts.grouped_bars("counts", list(views), series, ylabel="images")


def _prevalence(table: QueryTable, ir: DatasetIR) -> list[CodeTable]:
    """Per split (and overall when no split is declared): each coded label's values."""
    labels = [c for c in ir.labels.columns if _coded(c)]
    if not labels:
        return []
    split = ir.split
    per_column = {
        c.name: stats.value_counts(table, c.name, by=split.name if split else None) for c in labels
    }
    codes: list[str] = []
    for c in labels:
        codes += [name for name in _code_names(c) if name not in codes]
    split_values = sorted({g for vc in per_column.values() for g, _ in vc.counts}, key=_order)
    tables = []
    for group in split_values:
        split_name = value_name(split, group) if split else None
        counts = {
            c.name: {
                name: sum(
                    n
                    for (g, v), n in per_column[c.name].counts.items()
                    if g == group and value_name(c, v) == name
                )
                for name in codes
            }
            for c in labels
        }
        chart = charts.stacked_shares(
            f"prevalence-{split_name or 'all'}",
            [c.name for c in labels],
            {name: [counts[c.name][name] for c in labels] for name in codes},
            title=f"{split_name or 'all images'}: label values, share of images",
        )
        tables.append(
            CodeTable(split_name, tuple(c.name for c in labels), tuple(codes), counts, chart)
        )
    return tables


def _order(value: Any) -> tuple[bool, Any]:
    return value is None, value


def _distributions(table: QueryTable, ir: DatasetIR) -> list[Distribution]:
    """The declared columns that are not roles nor coded labels: values per split."""
    roles = {c.name for c in (ir.split, ir.view, ir.patient, ir.study) if c is not None}
    columns = [c for c in ir.key.columns if c.name not in roles]
    columns += [c for c in ir.labels.columns if not _coded(c)]
    split = ir.split
    found = []
    for column in columns:
        if column.type.name == "float":
            histogram = stats.histogram(table, column.name)
            chart = (
                charts.histogram_bars(
                    f"distribution-{column.name}",
                    histogram.edges,
                    histogram.counts,
                    xlabel=column.name,
                )
                if histogram.counts
                else None
            )
            note = f"{histogram.nulls} null" if histogram.nulls else ""
            found.append(Distribution(column.name, column.description, chart=chart, note=note))
            continue
        distinct = stats.distinct_values(table, column.name)
        if distinct > MAX_CHARTED_VALUES:
            found.append(
                Distribution(
                    column.name,
                    column.description,
                    note=f"{distinct} distinct values: not charted (over {MAX_CHARTED_VALUES})",
                )
            )
            continue
        counts = stats.value_counts(table, column.name, by=split.name if split else None)
        groups = sorted({g for g, _ in counts.counts}, key=_order)
        split_names = tuple(value_name(split, g) if split else "all" for g in groups)
        values = sorted({v for _, v in counts.counts}, key=_order)
        rows = tuple(
            (value_name(column, v), tuple(counts.counts.get((g, v), 0) for g in groups))
            for v in values
        )
        chart = charts.grouped_bars(
            f"distribution-{column.name}",
            [name for name, _ in rows],
            {s: [per_split[i] for _, per_split in rows] for i, s in enumerate(split_names)},
            ylabel="images",
        )
        found.append(Distribution(column.name, column.description, split_names, rows, chart))
    return found


def _jpg_dir(manifest: Manifest) -> str | None:
    folder = manifest.parameters.get("output_jpg_dir")
    return str(folder) if folder else None


def _thumbnails_note(manifest: Manifest, images: bool) -> str:
    if not images:
        return "Left out (--card_without_images / --without_images)."
    if _jpg_dir(manifest) is None:
        return "This run wrote no JPG tree (--output_jpg_dir), so there are no thumbnails."
    return ""


def _thumbnails(table: QueryTable, manifest: Manifest, ir: DatasetIR) -> list[Thumbnails]:
    folder = _jpg_dir(manifest)
    if folder is None:
        return []
    image_format = ImageFormat(manifest.parameters.get("image", {}).get("format", "jpeg"))
    split, view = ir.split, ir.view
    by = [c.name for c in (split, view) if c is not None]
    groups = stats.sample_paths(table, by, per_group=THUMBNAILS_PER_GROUP)
    found = []
    for group, paths in groups.items():
        split_name, view_name = _split_view(split, view, group)
        uris = tuple(
            (path, thumbnail_uri(f"{folder}/{tree_path(path, image_format)}")) for path in paths
        )
        found.append(Thumbnails(split_name, view_name, uris))
    return found
