"""The join's Beam steps: images + per-image tables (+ group label rows) -> labelled images.

One mechanism for every data set (the rules are in `join`):

1. Each table's rows are parsed (`ParseRowFn`, or a table's own reader such
   as the split lists') into ``(path, TableRow)``; a row that does not parse
   but whose path does also goes on as a `RefusedRow`, so that its image is
   refused for the row's own reason.
2. `LabelImages` joins the images on their path with every table
   (`CoGroupByKey`, packed values only, `compact`), decides each path
   (`join_path`) and builds each image's full key and labels
   (`JoinSpec.assemble`). Where labels come per group (a study), the images
   are then joined on their group with the group's label rows
   (`join_group`). The images are read and transformed (`TransformImages`):
   each table row an image used is written with it or refused with it.
3. Per group, a label row is written when at least one image of its group
   is, else refused with the first refused image's reason
   (`AccountGroupRows`: a grouping on the group after the transform).

Every row ends written or quarantined under its table's manifest stage;
refusals travel as ``(stage, Quarantined)`` pairs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import apache_beam as beam

from datathon_etl.framework.ingest.compact import JoinCodec
from datathon_etl.framework.ingest.join import (
    ImageItem,
    JoinSpec,
    LabelRecord,
    RefusedRow,
    TableRow,
    join_group,
    join_path,
)
from datathon_etl.framework.ingest.transforms import (
    IMAGES,
    SKIPPED_TAG,
    TransformImages,
    pack_found,
)
from datathon_etl.framework.manifest import Outcome, Tally
from datathon_etl.framework.quarantine import Quarantined, Reason, Stage
from datathon_etl.framework.schema import SourceRowError
from datathon_etl.framework.sources.csv_rows import CsvRow

__all__ = [
    "ABSENT_LABELS_NOTE",
    "REFUSED_TAG",
    "AccountGroupRows",
    "LabelImages",
    "Labelled",
    "ParseRowFn",
    "inputs",
    "table_stage",
]

REFUSED_TAG = "refused"
"""Tagged output of ``(stage, Quarantined)`` pairs."""
ATTACHED_TAG = "attached"
NOTES_TAG = "notes"

ABSENT_LABELS_NOTE = "images_without_group_labels"
"""Note kind: images written with the absent labels of a group without a label row (``count``)."""


def table_stage(name: str) -> str:
    """The manifest stage of a table's rows: ``metadata`` -> ``metadata_rows``."""
    return f"{name}_rows"


def _refuse(stage: str, record: Quarantined) -> Any:
    return beam.pvalue.TaggedOutput(REFUSED_TAG, (stage, record))


class ParseRowFn(beam.DoFn):
    """`CsvRow` -> ``(join key, TableRow)``; a bad row is refused (and marks its key).

    Args:
        parse: (cells, ``file:line N``) -> (join key, value); raises
            ValueError (`SourceRowError` for a bad cell).
        row_key: cells -> join key from the id cells alone (ValueError if not).
        stage: The rows' manifest stage.
        value_error: The reason for a ValueError that is not a bad cell.
        path_column: The column naming the row's image, if any: a refused
            row's record names that path.
        path_match_regex: With `path_column`: a row whose path it does not
            match is skipped (`SKIPPED_TAG`), as its image is.
    """

    def __init__(
        self,
        parse: Callable[[Mapping[str, str | None], str], tuple[str, Any]],
        row_key: Callable[[Mapping[str, str | None]], str],
        stage: str,
        value_error: Reason = Reason.BAD_LABEL_ROW,
        path_column: str | None = None,
        path_match_regex: str | None = None,
    ) -> None:
        super().__init__()
        self._parse = parse
        self._row_key = row_key
        self._stage = stage
        self._value_error = value_error
        self._path_column = path_column
        self._regex = path_match_regex

    def setup(self) -> None:
        """Compiles the path filter once per worker."""
        self._pattern = re.compile(self._regex) if self._regex is not None else None

    def process(self, row: CsvRow) -> Iterator[Any]:
        """Parses one row."""
        path = (row.cells.get(self._path_column) or "") if self._path_column else None
        if self._pattern is not None and not self._pattern.fullmatch(path or ""):
            yield beam.pvalue.TaggedOutput(SKIPPED_TAG, path)
            return
        try:
            key: str | None = self._row_key(row.cells)
        except ValueError:
            key = None
        if row.problem is not None:
            reason, detail = Reason.BAD_LABEL_ROW, row.problem
        else:
            try:
                joined, value = self._parse(row.cells, row.where)
            except SourceRowError as e:
                reason = Reason.UNKNOWN_CODE if e.unknown_code else Reason.BAD_LABEL_ROW
                detail = str(e)
            except ValueError as e:
                reason, detail = self._value_error, str(e)
            else:
                yield joined, TableRow(row.where, value)
                return
        name = path if path is not None else key or ""
        yield _refuse(self._stage, Quarantined(name, Stage.PARSE_LABELS, reason, detail, row.where))
        if key is not None:
            yield key, RefusedRow(row.where, reason, detail)


class _PathFn(beam.DoFn):
    """``(path, ([images], [rows of each table]...))``, packed -> each image that goes on.

    Without a group: ``(path, (ImageItem, LabelRecord))``, ready to transform.
    With one: ``(group, packed image)``, a refused image included (its
    group's label row shares its reason). Refusals go to `REFUSED_TAG`.
    """

    def __init__(self, join: JoinSpec, codec: JoinCodec, progress: Any) -> None:
        super().__init__()
        self._join = join
        self._codec = codec
        self._progress = progress

    def process(self, element: tuple[str, Sequence[Iterable[bytes]]]) -> Iterator[Any]:
        """Decides one path."""
        path, (found, *packed_rows) = element
        tables, group = self._join.tables, self._join.group
        images = [self._codec.unpack_image(packed) for packed in found]
        rows = [
            [self._codec.unpack_row(packed, t.value_type) for packed in table_rows]
            for t, table_rows in zip(tables, packed_rows, strict=True)
        ]
        joined = join_path(path, images, rows, tables)
        self._progress.done(sum(1 for stage, _ in joined.refusals if stage == IMAGES))
        for stage, record in joined.refusals:
            yield _refuse(stage, record)
        if joined.image is None:
            return
        if joined.refused is not None:
            if group is not None:
                packed = self._codec.pack_refused(path, *joined.refused)
                yield group.of(joined.image.key), packed
            return
        key, labels = self._join.assemble(joined.image.key, *joined.values)
        item = ImageItem(joined.image.source, key, joined.image.ref)
        if group is None:
            yield path, (item, LabelRecord(key, labels, joined.rows))
        else:
            yield group.of(key), self._codec.pack_joined(path, item, joined.rows)


class _GroupFn(beam.DoFn):
    """``(group, ([images], [label rows]))``, packed -> each image with its group's labels.

    Main output ``(path, (ImageItem, LabelRecord))``; `ATTACHED_TAG`
    ``(group, packed (paths, label row))``; `REFUSED_TAG` refusals.
    """

    def __init__(self, join: JoinSpec, codec: JoinCodec, progress: Any) -> None:
        super().__init__()
        self._group = join.group
        self._codec = codec
        self._progress = progress

    def process(self, element: tuple[str, Sequence[Iterable[bytes]]]) -> Iterator[Any]:
        """Gives each image of one group the group's labels."""
        group = self._group
        assert group is not None  # only built with a group
        key, (packed_images, packed_rows) = element
        images: list[tuple[str, ImageItem[Any], tuple[tuple[str, str], ...]]] = []
        refused: list[tuple[str, Reason, str]] = []
        for joined in map(self._codec.unpack_joined, packed_images):
            if isinstance(joined[1], ImageItem):
                images.append(joined)
            else:
                refused.append(joined)
        rows = [self._codec.unpack_row(packed, group.labels_type) for packed in packed_rows]
        decided = join_group(group, key, images, refused, rows)
        for stage, record in decided.refusals:
            yield _refuse(stage, record)
        if decided.refusal is not None:
            self._progress.done(len(images))
            return
        for path, item, image_rows in images:
            yield path, (item, LabelRecord(item.key, decided.labels, image_rows, key))
        if images:
            paths = tuple(sorted(path for path, _, _ in images))
            yield beam.pvalue.TaggedOutput(
                ATTACHED_TAG, (key, self._codec.pack_attached(paths, decided.used))
            )


class Labelled(NamedTuple):
    """What `LabelImages` returns."""

    examples: beam.PCollection
    """`Example` per image that joined and was transformed."""
    refusals: beam.PCollection
    """``(stage, Quarantined)``: every refused image (`IMAGES`) and table or label row."""
    tallies: beam.PCollection
    """`Tally` of the rows written and of every refusal."""
    notes: beam.PCollection
    """JSON lines: the examples' pixel sizes; images written without group labels."""


class LabelImages(beam.PTransform):
    """Found images and parsed rows -> transformed, labelled examples; every record accounted.

    Args:
        join: The data set's join.
        codec: Packs what the groupings hold.
        transform: The step that reads and transforms the joined images
            (its `progress` counts the images found and those refused here).

    The input is `inputs` of the image collections, the tables' rows and the
    group's label rows.
    """

    def __init__(self, join: JoinSpec, codec: JoinCodec, transform: TransformImages) -> None:
        super().__init__()
        self._join = join
        self._codec = codec
        self._transform = transform
        self._progress = transform.progress

    def expand(self, named: dict[str, beam.PCollection]) -> Labelled:
        """Joins on path (and group), transforms, accounts for every row."""
        images = [named[name] for name in sorted(named) if name.startswith("images")]
        table_rows = [named[f"table{i}"] for i in range(len(self._join.tables))]
        group_rows = named.get("group")
        join, codec, group = self._join, self._codec, self._join.group
        # Packed before they meet: the local runner holds a Flatten of several inputs whole.
        packed = [
            part | f"PackImages{i or ''}" >> beam.Map(pack_found, codec, self._progress)
            for i, part in enumerate(images)
        ]
        by_path = [packed[0] if len(packed) == 1 else packed | "AllImages" >> beam.Flatten()]
        for table, rows in zip(join.tables, table_rows, strict=True):
            by_path.append(rows | f"Pack{_title(table.stage)}" >> _Pack(codec, table.value_type))
        # Joins take tuples, not dicts: Beam tags each value held with its input's
        # name, and a one-character name ("0", "1") is a string CPython shares.
        joined = (
            tuple(by_path)
            | "JoinOnPath" >> beam.CoGroupByKey()
            | "DecidePaths"
            >> beam.ParDo(_PathFn(join, codec, self._progress)).with_outputs(
                REFUSED_TAG, main="images"
            )
        )
        refusals = [joined[REFUSED_TAG]]
        pairs, attached = joined.images, None
        if group is not None:
            assert group_rows is not None
            grouped = (
                (joined.images, group_rows | "PackGroupRows" >> _Pack(codec, group.labels_type))
                | "JoinOnGroup" >> beam.CoGroupByKey()
                | "DecideGroups"
                >> beam.ParDo(_GroupFn(join, codec, self._progress)).with_outputs(
                    ATTACHED_TAG, REFUSED_TAG, main="pairs"
                )
            )
            refusals.append(grouped[REFUSED_TAG])
            pairs, attached = grouped.pairs, grouped[ATTACHED_TAG]
        labelled = pairs | "Transform" >> self._transform
        refusals += [
            labelled.image_refusals | "RefusedImages" >> beam.Map(lambda q: (IMAGES, q)),
            labelled.row_refusals,
        ]
        tallies = [labelled.tallies]
        notes = [labelled.pixel_sizes]
        if group is not None:
            accounts = (
                attached,
                labelled.examples,
                labelled.group_refusals,
            ) | "AccountGroupRows" >> AccountGroupRows(join, codec)
            refusals.append(accounts.refusals)
            tallies.append(accounts.tallies)
            notes.append(accounts.notes)
        every_refusal = refusals | "JoinRefusals" >> beam.Flatten()
        tallies.append(
            every_refusal
            | "TallyJoinRefusals"
            >> beam.MapTuple(lambda stage, q: Tally(stage, Outcome.QUARANTINED, str(q.reason)))
        )
        return Labelled(
            labelled.examples,
            every_refusal,
            tallies | "JoinTallies" >> beam.Flatten(),
            notes | "JoinNotes" >> beam.Flatten(),
        )


def inputs(
    images: Sequence[beam.PCollection],
    table_rows: Sequence[beam.PCollection],
    group_rows: beam.PCollection | None = None,
) -> dict[str, beam.PCollection]:
    """`LabelImages`' input, named.

    Args:
        images: ``(path, ImageItem)`` collections (tars, files).
        table_rows: Per table, in `JoinSpec.tables`' order, ``(path, TableRow | RefusedRow)``.
        group_rows: With a group, its label rows as ``(group, TableRow | RefusedRow)``.
    """
    named = {f"images{i:03d}": part for i, part in enumerate(images)}
    named.update({f"table{i}": rows for i, rows in enumerate(table_rows)})
    if group_rows is not None:
        named["group"] = group_rows
    return named


def _title(stage: str) -> str:
    return "".join(part.capitalize() for part in stage.split("_"))


class _Pack(beam.PTransform):
    """``(key, TableRow | RefusedRow)`` -> ``(key, bytes)``."""

    def __init__(self, codec: JoinCodec, value_type: Any) -> None:
        super().__init__()
        self._codec = codec
        self._value_type = value_type

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        """Packs each row."""
        codec, value_type = self._codec, self._value_type
        return rows | "Pack" >> beam.MapTuple(lambda k, row: (k, codec.pack_row(row, value_type)))


class _AccountFn(beam.DoFn):
    """``(group, ([attached], [written paths], [refused images]))`` -> its label row's outcome."""

    def __init__(self, join: JoinSpec, codec: JoinCodec) -> None:
        super().__init__()
        assert join.group is not None
        self._group = join.group
        self._codec = codec

    def process(self, element: tuple[str, Sequence[Iterable[Any]]]) -> Iterator[Any]:
        """Written with its first written image, else refused with its first refused one."""
        key, (packed, written_paths, refused_images) = element
        written = set(written_paths)
        refused: dict[str, Quarantined] = {q.path: q for q in refused_images}
        for paths, label_where in map(self._codec.unpack_attached, packed):
            done = sum(1 for path in paths if path in written)
            if label_where is None:
                if done:
                    yield beam.pvalue.TaggedOutput(NOTES_TAG, done)
            elif done:
                yield Tally(self._group.stage, Outcome.WRITTEN)
            else:
                first = next((refused[p] for p in paths if p in refused), None)
                if first is None:  # cannot happen: TransformImages writes or refuses each
                    continue
                detail = f"no image of this {self._group.name} was written ({first.detail})"
                record = Quarantined(key, first.stage, first.reason, detail, label_where)
                yield _refuse(self._group.stage, record)


class GroupAccounts(NamedTuple):
    """What `AccountGroupRows` returns."""

    tallies: beam.PCollection
    """`Tally` of the label rows written."""
    refusals: beam.PCollection
    """``(stage, Quarantined)``: label rows all of whose images were refused after the join."""
    notes: beam.PCollection
    """JSON lines: the number of images written without group labels."""


class AccountGroupRows(beam.PTransform):
    """``(attached, examples, (group, refused image))`` -> what became of each group's label row.

    Args:
        join: The data set's join (its `group` set).
        codec: Unpacks the attached groups.
    """

    def __init__(self, join: JoinSpec, codec: JoinCodec) -> None:
        super().__init__()
        assert join.group is not None
        self._join = join
        self._codec = codec

    def expand(
        self, inputs: tuple[beam.PCollection, beam.PCollection, beam.PCollection]
    ) -> GroupAccounts:
        """Joins the attached label rows with their images' outcomes on the group."""
        attached, examples, refused = inputs
        group_of = self._join.group.of if self._join.group is not None else str
        accounted = (
            (
                attached,
                examples | "WrittenGroup" >> beam.Map(lambda e: (group_of(e.key), e.path)),
                refused,
            )
            | "JoinOutcomes" >> beam.CoGroupByKey()
            | "Account"
            >> beam.ParDo(_AccountFn(self._join, self._codec)).with_outputs(
                REFUSED_TAG, NOTES_TAG, main="tallies"
            )
        )
        notes = (
            accounted[NOTES_TAG]
            | "CountAbsent" >> beam.CombineGlobally(sum)
            | "AbsentNote"
            >> beam.Map(lambda n: json.dumps({"note": ABSENT_LABELS_NOTE, "count": n}))
        )
        return GroupAccounts(accounted.tallies, accounted[REFUSED_TAG], notes)
