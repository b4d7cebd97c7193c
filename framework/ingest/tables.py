"""A data set's tables as the join sees them, and their readers.

Every data set's images are joined by one mechanism (`join`, `assemble`);
what differs is which tables they are joined with, declared by the data set
(`IngestSpec`) and made into a `JoinSpec` here:

- labels per image (MIMIC-CXR, CheXpert, NIH ChestX-ray14): the label CSV is
  one per-image table keyed by the image's canonical path, its rows' value
  the (key, labels) they parse into; the layout's own tables (`ImageTables`)
  follow, their values completing the key (`ImageTables.image_key`); a data
  set with split lists has their lines as a last table, setting the split;
- labels per group (per study: MIMIC-CXR-JPG, MIMIC-CXR DICOM): the layout's
  tables (metadata, split) build the key from the path's; the label rows are
  the group's, keyed by `GroupLabels.group_of`.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import apache_beam as beam
import attrs

from datathon_etl.framework.ingest.assemble import REFUSED_TAG, ParseRowFn, table_stage
from datathon_etl.framework.ingest.compact import Wheres
from datathon_etl.framework.ingest.join import Group, JoinSpec, Table
from datathon_etl.framework.ingest.spec import IngestSpec
from datathon_etl.framework.ingest.split_lists import SPLIT_LISTS, ReadSplitLists
from datathon_etl.framework.ingest.transforms import LABEL_ROWS, SKIPPED_TAG
from datathon_etl.framework.manifest import Outcome
from datathon_etl.framework.quarantine import Reason
from datathon_etl.framework.run_records import TallyEach
from datathon_etl.framework.sources.csv_rows import ReadCsvRows

__all__ = ["LabelRowsByPath", "TableInputs", "csv_roles", "join_spec", "read_tables"]


@attrs.frozen
class LabelRowsByPath:
    """A per-image label CSV as a table of the join: rows keyed by their image's canonical path."""

    spec: IngestSpec

    def __call__(self, cells: Mapping[str, str | None], where: str) -> tuple[str, Any]:
        """(cells, where) -> (canonical path, (key, labels))."""
        key, labels = self.spec.parse_label_row(cells, where)
        return self.spec.format_path(key), (key, labels)

    def row_key(self, cells: Mapping[str, str | None]) -> str:
        """The canonical path of the row's path cell; ValueError if it does not parse.

        A row refused for a cell then still refuses its image, for its own reason.
        """
        return str(
            self.spec.format_path(self.spec.parse_path(cells.get(self.spec.path_column) or ""))
        )


@attrs.frozen
class _PerImage:
    """`JoinSpec.assemble` of labels per image: the label row's, the tables', the split."""

    image_key: Any = None
    split_field: str | None = None
    split_type: Any = None

    def __call__(self, _path_key: Any, row: tuple[Any, Any], *values: Any) -> tuple[Any, Any]:
        """(path key, (key, labels), one value per layout table[, split code]) -> (key, labels)."""
        key, labels = row  # the row's key: it may hold key columns the path does not
        if self.split_field is not None:
            key = attrs.evolve(key, **{self.split_field: self.split_type(values[-1])})
            values = values[:-1]
        if self.image_key is not None:
            key = self.image_key(key, *values)
        return key, labels


@attrs.frozen
class _PerGroup:
    """`JoinSpec.assemble` of labels per group: the key from the tables; labels come per group."""

    image_key: Any

    def __call__(self, path_key: Any, *values: Any) -> tuple[Any, None]:
        """(path key, one value per table) -> (full key, None)."""
        return self.image_key(path_key, *values), None


def _layout_tables(spec: IngestSpec) -> list[Table]:
    tables = spec.image_tables.tables if spec.image_tables is not None else ()
    return [Table(t.name, table_stage(t.name), t.missing, t.row_type) for t in tables]


def join_spec(spec: IngestSpec) -> JoinSpec:
    """The data set's join: its per-image tables, how they build a key, its group (if any)."""
    grouped = spec.group_labels
    if grouped is not None:
        assert spec.image_tables is not None, "labels per group come with per-image tables"
        return JoinSpec(
            tuple(_layout_tables(spec)),
            _PerGroup(spec.image_tables.image_key),
            grouped.path_key_type,
            spec.key_type,
            Group(grouped.name, grouped.group_of, LABEL_ROWS, spec.labels_type, grouped.no_labels),
        )
    label = Table(
        "label", LABEL_ROWS, Reason.IMAGE_WITHOUT_LABELS, (spec.key_type, spec.labels_type)
    )
    tables = [label, *_layout_tables(spec)]
    image_key = spec.image_tables.image_key if spec.image_tables is not None else None
    assemble = _PerImage(image_key)
    if spec.split_lists is not None:
        tables.append(Table("split list", SPLIT_LISTS, Reason.MISSING_SPLIT))
        field = spec.split_lists.field
        assemble = _PerImage(image_key, field, typing.get_type_hints(spec.key_type)[field])
    return JoinSpec(tuple(tables), assemble, spec.key_type, spec.key_type)


def _read_rows(
    p: beam.Pipeline, name: str, uris: Sequence[str], parse: ParseRowFn, stage: str
) -> tuple[beam.PCollection, beam.PCollection, list[beam.PCollection]]:
    """CSV files -> ``(path or group, TableRow | RefusedRow)``, refusals, tallies."""
    # A handful of files: spreading them is not worth a shuffle's start-up cost.
    files = p | f"{name}Files" >> beam.Create(list(uris), reshuffle=False)
    rows = files | f"Read{name}" >> ReadCsvRows()
    parsed = rows | f"Parse{name}" >> beam.ParDo(parse).with_outputs(
        REFUSED_TAG, SKIPPED_TAG, main="rows"
    )
    tallies = [
        rows | f"Tally{name}" >> TallyEach(stage, Outcome.INPUT),
        parsed[SKIPPED_TAG] | f"Tally{name}Skipped" >> TallyEach(stage, Outcome.SKIPPED),
    ]
    return parsed.rows, parsed[REFUSED_TAG], tallies


class TableInputs(NamedTuple):
    """What `read_tables` returns."""

    table_rows: list[beam.PCollection]
    """Per table of `join_spec`, ``(path, TableRow | RefusedRow)``."""
    group_rows: beam.PCollection | None
    """With labels per group, ``(group, TableRow | RefusedRow)``."""
    refusals: list[beam.PCollection]
    """``(stage, Quarantined)``: rows and lines that did not parse."""
    tallies: list[beam.PCollection]
    """`Tally` of the rows read and skipped, per stage."""
    wheres: Wheres
    """Packs the rows' ``where``: every file read."""


def read_tables(
    p: beam.Pipeline,
    spec: IngestSpec,
    csvs: Sequence[str],
    tables: Mapping[str, Sequence[str]],
    split_lists: Mapping[str, int],
    path_match_regex: str | None,
) -> TableInputs:
    """Reads and parses every table of ``spec``'s join.

    Args:
        p: The pipeline.
        spec: The data set.
        csvs: Its label CSVs (per group: the chosen label source's).
        tables: Each of the layout's per-image tables' CSVs, by name.
        split_lists: The split lists, each with its split's code.
        path_match_regex: Rows and lines of the images it leaves out are skipped.
    """
    grouped = spec.group_labels
    inputs = TableInputs(
        [], None, [], [], Wheres((*csvs, *(u for us in tables.values() for u in us), *split_lists))
    )
    if grouped is None:
        labels = LabelRowsByPath(spec)
        parse = ParseRowFn(
            labels,
            labels.row_key,
            LABEL_ROWS,
            Reason.UNPARSEABLE_PATH,
            spec.path_column,
            path_match_regex,
        )
        _add(inputs, _read_rows(p, "Labels", csvs, parse, LABEL_ROWS))
    image_tables = spec.image_tables
    if image_tables is not None:
        for table in image_tables.tables:
            assert table.parse_row is not None, "ingest_spec gives every table its parser"
            stage = table_stage(table.name)
            parse = ParseRowFn(table.parse_row, image_tables.row_key, stage)
            _add(inputs, _read_rows(p, table.name.capitalize(), tables[table.name], parse, stage))
    if spec.split_lists is not None:
        lines = p | "SplitLists" >> ReadSplitLists(
            dict(split_lists), spec.parse_path, spec.format_path, path_match_regex
        )
        _add(inputs, (lines.rows, lines.refusals, [lines.tallies]))
    if grouped is None:
        return inputs
    assert image_tables is not None, "labels per group come with per-image tables"
    parse = ParseRowFn(spec.parse_label_row, image_tables.row_key, LABEL_ROWS)
    group_rows, refusals, tallies = _read_rows(p, "Labels", csvs, parse, LABEL_ROWS)
    inputs.refusals.append(refusals)
    inputs.tallies.extend(tallies)
    return inputs._replace(group_rows=group_rows)


def _add(
    inputs: TableInputs, read: tuple[beam.PCollection, beam.PCollection, list[beam.PCollection]]
) -> None:
    rows, refusals, tallies = read
    inputs.table_rows.append(rows)
    inputs.refusals.append(refusals)
    inputs.tallies.extend(tallies)


def csv_roles(
    spec: IngestSpec, uris: Iterable[str], labels_source: str | None
) -> tuple[dict[str, tuple[str, ...]], tuple[str, ...]]:
    """Tells the CSVs apart by name: each per-image table's files, and the label files.

    A file belongs to the table (or label source) its name ends with, less
    ``.csv`` or ``.csv.gz``: ``mimic-cxr-2.0.0-metadata.csv.gz`` is the
    ``metadata`` table's. Files of the label sources not chosen are left out.
    With labels per image (no label sources), every other file is a label file.

    Args:
        spec: The data set (its `IngestSpec.image_tables` are set).
        uris: The CSV files.
        labels_source: The label source to read (None: the first declared).

    Returns:
        (table name -> its files, the chosen label source's files).

    Raises:
        ValueError: An unknown label source, a file no role's name ends (with
            labels per group), or a table or the labels without a file.
    """
    assert spec.image_tables is not None
    table_names = [t.name for t in spec.image_tables.tables]
    sources = list(spec.group_labels.label_sources) if spec.group_labels is not None else []
    source = labels_source or (sources[0] if sources else "label")
    if sources and source not in sources:
        raise ValueError(f"--labels_source: {source!r} is not one of {', '.join(sources)}")
    names = table_names + sources
    found: dict[str, list[str]] = {name: [] for name in [*names, source]}
    for uri in sorted(uris):
        stem = re.sub(r"\.csv(\.gz)?$", "", uri.rsplit("/", 1)[-1].lower())
        role = next((n for n in names if stem.endswith(n.lower())), None if sources else source)
        if role is None:
            raise ValueError(
                f"--input_csv: {uri}: its name ends in none of {', '.join(names)} "
                "(before .csv or .csv.gz)"
            )
        found[role].append(uri)
    for name in [*table_names, source]:
        if not found[name]:
            ending = (
                f"ending in {name}.csv[.gz]"
                if sources or name != source
                else (f"ending in none of {', '.join(table_names)}")
            )
            raise ValueError(f"--input_csv: no {name} file (a name {ending})")
    return {name: tuple(found[name]) for name in table_names}, tuple(found[source])
