"""What a data card says, gathered from a run's outputs: everything the page shows, as data.

`gather` reads the manifest and the quarantine, runs the statistics over the
labels table (if the run wrote one), draws the charts and makes the
thumbnails (from the JPG tree, else from the TFRecords); the page template
(`datathon_etl.framework.card.page`) only lays it out. What the columns
are comes from the card's `Subject` (a declaration, or a label query's
columns); values are named here: codes by their enum names, NULL as
``null``.
"""

from __future__ import annotations

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
from datathon_etl.framework.card.subject import DECLARATION, LABELS_COLUMNS, Subject, describe
from datathon_etl.framework.card.tables import QueryTable, open_table
from datathon_etl.framework.card.thumbnails import thumbnail_uri, thumbnail_uri_of
from datathon_etl.framework.images.formats import ImageFormat, tree_path
from datathon_etl.framework.manifest import IMAGES, PIXEL_SIZES, TFRECORD_SHARDS, Manifest
from datathon_etl.framework.schema import Column
from datathon_etl.framework.tables import parse_table_spec
from datathon_etl.framework.tfrecords import FeatureSpec, read_features
from datathon_etl.framework.tfrecords.shards import first_records, read_features_file

__all__ = [
    "DECLARATION",
    "MAX_CHARTED_SIZES",
    "MAX_CHARTED_VALUES",
    "THUMBNAILS_PER_GROUP",
    "Card",
    "CodeTable",
    "Distribution",
    "SourceSizes",
    "Thumbnails",
    "gather",
]

THUMBNAILS_PER_GROUP = 6
"""Thumbnails per split and view."""
MAX_CHARTED_VALUES = 30
"""A column with more distinct values is described by their number, not charted."""
MAX_CHARTED_SIZES = 20
"""The most frequent source sizes charted one by one; the others share a bar."""
_RUN_PARAMETERS = ("run", "inputs", DECLARATION, LABELS_COLUMNS, TFRECORD_SHARDS, PIXEL_SIZES)
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
class SourceSizes:
    """The sources' pixel sizes, as the run recorded them (its ``source_pixel_sizes``).

    Attributes:
        grid: Sizes are rounded down to multiples of this many pixels (1: exact).
        sizes: (width, height, images), the most frequent first.
        chart: The most frequent sizes' bars.
    """

    grid: int
    sizes: tuple[tuple[int, int, int], ...]
    chart: charts.Chart

    @property
    def images(self) -> int:
        """Images counted: the images written."""
        return sum(n for _, _, n in self.sizes)

    @property
    def widths(self) -> tuple[int, int]:
        """The smallest and largest width."""
        return min(w for w, _, _ in self.sizes), max(w for w, _, _ in self.sizes)

    @property
    def heights(self) -> tuple[int, int]:
        """The smallest and largest height."""
        return min(h for _, h, _ in self.sizes), max(h for _, h, _ in self.sizes)


@attrs.frozen
class Card:
    """Everything a data card shows (see the module docstring)."""

    subject: Subject
    manifest: Manifest
    table: str | None
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
    pixel_sizes: SourceSizes | None
    pixel_sizes_note: str


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


@attrs.frozen
class _Counted:
    """What the card counts in the labels table."""

    counts: list[stats.GroupCounts]
    split_totals: list[stats.GroupCounts] = attrs.field(factory=list)
    total: stats.GroupCounts | None = None
    prevalence: list[CodeTable] = attrs.field(factory=list)
    distributions: list[Distribution] = attrs.field(factory=list)
    leakage: stats.Leakage | None = None
    thumbnails: list[Thumbnails] = attrs.field(factory=list)


def gather(output_dir: str, *, images: bool = True) -> Card:
    """Reads a run's outputs and computes everything its card shows.

    Args:
        output_dir: The run's ``--output_dir``.
        images: Whether to make thumbnails of the resized images.

    Raises:
        ValueError: No manifest, no declaration nor label columns, or no labels table.
    """
    manifest = read_manifest(output_dir)
    subject = describe(manifest)
    if subject.table is None:
        return _card(output_dir, manifest, subject, _without_table(manifest), images=images)
    table_spec = parse_table_spec(subject.table, default_database=f"{output_dir}/tables.duckdb")
    with open_table(table_spec) as table:
        counted = _count(table, manifest, subject, images=images)
    return _card(
        output_dir, manifest, attrs.evolve(subject, table=str(table_spec)), counted, images=images
    )


def _count(table: QueryTable, manifest: Manifest, subject: Subject, *, images: bool) -> _Counted:
    split, view = subject.split, subject.view
    patient = subject.patient.name if subject.patient else None
    study = subject.study.name if subject.study else None
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
    return _Counted(
        counts=counts,
        split_totals=split_totals,
        total=next(iter(stats.group_counts(table, [], patient=patient, study=study)), None),
        prevalence=_prevalence(table, subject),
        distributions=_distributions(table, subject),
        leakage=_leakage(table, patient, split),
        thumbnails=_thumbnails(table, manifest, subject) if images else [],
    )


def _without_table(manifest: Manifest) -> _Counted:
    """No labels table: the images written, from the manifest."""
    images = manifest.stages.get(IMAGES)
    written = images.written if images else 0
    return _Counted([stats.GroupCounts(("all", "all"), written, None, None)] if written else [])


def _card(
    output_dir: str, manifest: Manifest, subject: Subject, counted: _Counted, *, images: bool
) -> Card:
    splits = _present(subject.split, {g.group[0] for g in counted.counts})
    views = _present(subject.view, {g.group[1] for g in counted.counts})
    parameters = {
        key: value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        for key, value in sorted(manifest.parameters.items())
        if key not in _RUN_PARAMETERS
    }
    thumbnails = counted.thumbnails
    if images and not thumbnails and _jpg_dir(manifest) is None:
        thumbnails = _tfrecord_thumbnails(manifest)
    return Card(
        subject=subject,
        manifest=manifest,
        table=subject.table,
        run=dict(manifest.parameters.get("run") or {}),
        inputs=tuple(manifest.parameters.get("inputs") or ()),
        parameters=parameters,
        shards=dict(manifest.parameters.get(TFRECORD_SHARDS) or {}),
        splits=splits,
        views=views,
        counts=tuple(counted.counts),
        split_totals=tuple(counted.split_totals),
        total=counted.total,
        counts_chart=_counts_chart(counted.counts, splits, views),
        prevalence=tuple(counted.prevalence),
        distributions=tuple(counted.distributions),
        leakage=counted.leakage,
        quarantine=read_quarantine(output_dir),
        thumbnails=tuple(thumbnails),
        thumbnails_note=_thumbnails_note(manifest, images, bool(thumbnails)),
        pixel_sizes=_source_sizes(manifest),
        pixel_sizes_note=(
            "This run's manifest does not record its sources' pixel sizes (a run before "
            "they were recorded, or one whose counts were not read back)."
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


def _prevalence(table: QueryTable, subject: Subject) -> list[CodeTable]:
    """Per split (and overall when no split is declared): each coded label's values."""
    labels = list(subject.coded)
    if not labels:
        return []
    split = subject.split
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


def _distributions(table: QueryTable, subject: Subject) -> list[Distribution]:
    """The columns that are not roles nor coded labels: values per split."""
    split = subject.split
    found = []
    for column in subject.described:
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


def _thumbnails_note(manifest: Manifest, images: bool, shown: bool) -> str:
    if not images:
        return "Left out (--card_without_images / --without_images)."
    if _jpg_dir(manifest) is None:
        if shown:
            return (
                f"The first {THUMBNAILS_PER_GROUP} records of each TFRecord folder "
                "(this run wrote no JPG tree)."
            )
        return "This run wrote no JPG tree (--output_jpg_dir) and no TFRecord to show."
    return ""


def _thumbnails(table: QueryTable, manifest: Manifest, subject: Subject) -> list[Thumbnails]:
    folder = _jpg_dir(manifest)
    if folder is None:
        return []
    image_format = ImageFormat(manifest.parameters.get("image", {}).get("format", "jpeg"))
    split, view = subject.split, subject.view
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


def _size_name(width: int, height: int, grid: int) -> str:
    if grid == 1:
        return f"{width} x {height}"
    return f"{width}-{width + grid - 1} x {height}-{height + grid - 1}"


def _source_sizes(manifest: Manifest) -> SourceSizes | None:
    """The recorded pixel sizes, with the chart of the most frequent; None if none recorded."""
    recorded = manifest.parameters.get(PIXEL_SIZES)
    if not recorded or not recorded.get("sizes"):
        return None
    grid = int(recorded["grid"])
    sizes = tuple((int(w), int(h), int(n)) for w, h, n in recorded["sizes"])
    shown, rest = sizes[:MAX_CHARTED_SIZES], sizes[MAX_CHARTED_SIZES:]
    rows = [_size_name(w, h, grid) for w, h, _ in shown]
    counts = [n for _, _, n in shown]
    if rest:
        rows.append(f"{len(rest)} other sizes")
        counts.append(sum(n for _, _, n in rest))
    chart = charts.ranked_bars("pixel-sizes", rows, counts, xlabel="images (width x height, px)")
    return SourceSizes(grid, sizes, chart)


def _tfrecord_thumbnails(manifest: Manifest) -> list[Thumbnails]:
    """The first records of each TFRecord folder (a run without a JPG tree), as thumbnails."""
    root = manifest.parameters.get("output_tfrecord_dir")
    shards: dict[str, int] = dict(manifest.parameters.get(TFRECORD_SHARDS) or {})
    if not root or not shards:
        return []
    image_feature, path_spec = read_features_file(str(root))
    specs = (FeatureSpec(image_feature, "bytes_list"), path_spec)
    per_folder: dict[str, list[tuple[str, str]]] = {}
    for shard, records in sorted(shards.items()):
        folder = shard.rpartition("/")[0]
        found = per_folder.setdefault(folder, [])
        wanted = min(records, THUMBNAILS_PER_GROUP - len(found))
        for record in first_records(f"{root}/{shard}", wanted) if wanted > 0 else ():
            row = read_features(record, specs)
            found.append((row[path_spec.name], thumbnail_uri_of(row[image_feature])))
    groups = []
    for folder, images in per_folder.items():
        split, _, view = folder.partition("/")
        groups.append(Thumbnails(split or "all", view or "all", tuple(images)))
    return [g for g in groups if g.images]
