"""The official split from list files: one file per split, one image path per line.

NIH ChestX-ray14 ships its split as ``train_val_list.txt`` and
``test_list.txt``. A data set declares such files (`Dataset.split_lists`);
the ingestion joins their lines with the parsed label rows on the image's
canonical path and sets each row's split key field from the list naming it,
before rows meet images. Only packed records go through the grouping: rows
as the main join packs them (`JoinCodec`), lines as (file index, line, code).

Every line ends written (it gave a row its split), skipped (its image is
left out by ``--path_match_regex``) or quarantined, under the manifest stage
`SPLIT_LISTS`: a path that does not parse (``unparseable_path``), a line
naming an image no label row names (``no_label_row``), the same image listed
again (``duplicate_label_row``). A label row no list names, or that two
lists disagree on, is quarantined (``missing_split``, ``duplicate_label_row``)
and so, at the join, is its image.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import apache_beam as beam
import attrs

from datathon_etl.framework.ingest.compact import JoinCodec, Wheres, from_bytes, to_bytes
from datathon_etl.framework.ingest.join import LabelRecord
from datathon_etl.framework.ingest.spec import SplitLists
from datathon_etl.framework.ingest.transforms import SKIPPED_TAG
from datathon_etl.framework.manifest import Outcome
from datathon_etl.framework.quarantine import QUARANTINE_TAG, Quarantined, Reason, Stage
from datathon_etl.framework.run_records import TallyEach, TallyQuarantine
from datathon_etl.framework.sources.csv_rows import open_text

__all__ = [
    "SPLIT_LISTS",
    "ApplySplitLists",
    "ListLine",
    "SplitAssignment",
    "assign_split",
    "read_list_lines",
]

SPLIT_LISTS = "split_lists"
"""Manifest stage: the lines of the split's list files."""
_USED_TAG = "used"


@attrs.frozen
class ListLine:
    """One line of a split list: the image it names, where it is, the split's code."""

    path: str
    where: str
    code: int


def read_list_lines(uri: str, code: int) -> Iterator[ListLine]:
    """Yields a list file's lines (plain or gzipped), blank lines left out."""
    with open_text(uri) as text:
        for number, line in enumerate(text, start=1):
            if path := line.strip():
                yield ListLine(path, f"{uri}:line {number}", code)


@attrs.frozen
class SplitAssignment:
    """What the lists made of the label rows of one image path.

    Attributes:
        code: The split's code for the rows, or None if they have none.
        used: The ``where`` of the line that gave it.
        rows: Quarantine records of rows without a split.
        lines: Quarantine records of lines that give none.
    """

    code: int | None
    used: str | None = None
    rows: tuple[Quarantined, ...] = ()
    lines: tuple[Quarantined, ...] = ()


def assign_split(
    path: str, rows: Sequence[LabelRecord[Any, Any]], lines: Iterable[tuple[str, int]]
) -> SplitAssignment:
    """Decides the split of one image path's label rows from the lines naming it.

    Args:
        path: The image's canonical path.
        rows: Its label rows (duplicates are for the image join to judge).
        lines: (where, code) of the list lines naming it.
    """
    listed = sorted(lines)
    if not rows:
        detail = "no label row names this image"
        return SplitAssignment(
            None, lines=tuple(_refused(path, Reason.NO_LABEL_ROW, detail, w) for w, _ in listed)
        )
    if not listed:
        detail = "no split list names this image"
        return SplitAssignment(
            None, rows=tuple(_refused(path, Reason.MISSING_SPLIT, detail, r.where) for r in rows)
        )
    (first, code), *rest = listed
    if any(other != code for _, other in rest):
        detail = f"listed in conflicting splits ({', '.join(w for w, _ in listed)})"
        reason = Reason.DUPLICATE_LABEL_ROW
        return SplitAssignment(
            None,
            rows=tuple(_refused(path, reason, detail, r.where) for r in rows),
            lines=tuple(_refused(path, reason, detail, w) for w, _ in listed),
        )
    detail = f"identical to {first}, which was used"
    return SplitAssignment(
        code,
        first,
        lines=tuple(_refused(path, Reason.DUPLICATE_LABEL_ROW, detail, w) for w, _ in rest),
    )


def _refused(path: str, reason: Reason, detail: str, where: str) -> Quarantined:
    return Quarantined(path, Stage.JOIN, reason, detail, where)


class _KeyLineFn(beam.DoFn):
    """`ListLine` -> ``(canonical path, packed line)``; skipped or refused otherwise."""

    def __init__(
        self, parse_path: Any, format_path: Any, wheres: Wheres, regex: str | None
    ) -> None:
        super().__init__()
        self._parse_path = parse_path
        self._format_path = format_path
        self._wheres = wheres
        self._regex = regex

    def setup(self) -> None:
        """Compiles the path filter once per worker."""
        self._pattern = re.compile(self._regex) if self._regex is not None else None

    def process(self, line: ListLine) -> Iterator[Any]:
        """Keys one line by its image's canonical path."""
        if self._pattern is not None and not self._pattern.fullmatch(line.path):
            yield beam.pvalue.TaggedOutput(SKIPPED_TAG, line.path)
            return
        try:
            path = self._format_path(self._parse_path(line.path))
        except ValueError as e:
            record = Quarantined(
                line.path, Stage.PARSE_LABELS, Reason.UNPARSEABLE_PATH, str(e), line.where
            )
            yield beam.pvalue.TaggedOutput(QUARANTINE_TAG, record)
            return
        yield path, to_bytes((self._wheres.pack(line.where), line.code))


class _AssignFn(beam.DoFn):
    """``(path, ([packed rows], [packed lines]))`` -> rows with their split, refusals."""

    def __init__(self, lists: SplitLists, codec: JoinCodec, wheres: Wheres) -> None:
        super().__init__()
        self._lists = lists
        self._codec = codec
        self._wheres = wheres

    def setup(self) -> None:
        """Finds the split's enum on the key class."""
        self._enum = typing.get_type_hints(self._codec.key_type)[self._lists.field]

    def process(self, element: tuple[str, Sequence[Iterable[bytes]]]) -> Iterator[Any]:
        """Sets the split of one path's rows."""
        path, (packed_rows, packed_lines) = element
        rows = [self._codec.unpack_row(packed) for packed in packed_rows]
        lines = [
            (self._wheres.unpack(where), code) for where, code in map(from_bytes, packed_lines)
        ]
        decision = assign_split(path, rows, lines)
        for record in decision.rows:
            yield beam.pvalue.TaggedOutput(QUARANTINE_TAG, record)
        for record in decision.lines:
            yield beam.pvalue.TaggedOutput(SPLIT_LISTS, record)
        if decision.code is None:
            return
        yield beam.pvalue.TaggedOutput(_USED_TAG, decision.used)
        split = {self._lists.field: self._enum(decision.code)}
        for row in rows:
            yield path, attrs.evolve(row, key=attrs.evolve(row.key, **split))


class SplitListed(NamedTuple):
    """What `ApplySplitLists` returns."""

    records: beam.PCollection
    """``(path, LabelRecord)`` of the rows a list gave a split."""
    row_refusals: beam.PCollection
    """`Quarantined` label rows (no split, conflicting splits)."""
    tallies: beam.PCollection
    """The `SPLIT_LISTS` stage's tallies."""
    line_refusals: beam.PCollection
    """`Quarantined` list lines."""


class ApplySplitLists(beam.PTransform):
    """``(path, LabelRecord)`` -> the same with the split each list file gives.

    Args:
        lists: The declared list files.
        uris: The list files to read, each with its split's code.
        codec: Packs the rows as the image join does.
        parse_path: The layout's path -> key, to key each line.
        format_path: The layout's key -> canonical path.
        path_match_regex: Lines of images it leaves out are skipped.
    """

    def __init__(
        self,
        lists: SplitLists,
        uris: dict[str, int],
        codec: JoinCodec,
        parse_path: Any,
        format_path: Any,
        path_match_regex: str | None,
    ) -> None:
        super().__init__()
        self._lists = lists
        self._uris = uris
        self._codec = codec
        self._wheres = Wheres(tuple(sorted(uris)))
        self._key_line = _KeyLineFn(parse_path, format_path, self._wheres, path_match_regex)

    def expand(self, records: beam.PCollection) -> SplitListed:
        """Reads the lists, joins them with the rows on path, sets each row's split."""
        p = records.pipeline
        lines = (
            p
            | "SplitListFiles" >> beam.Create(sorted(self._uris.items()), reshuffle=False)
            | "ReadSplitLists" >> beam.FlatMapTuple(read_list_lines)
        )
        keyed = lines | "KeySplitLines" >> beam.ParDo(self._key_line).with_outputs(
            QUARANTINE_TAG, SKIPPED_TAG, main="lines"
        )
        # A tuple of inputs, as the image join's (one-character tags, shared).
        joined = (
            records | "PackRowsForSplit" >> beam.Map(self._codec.pack_row),
            keyed.lines,
        ) | "JoinSplitLists" >> beam.CoGroupByKey()
        assigned = joined | "AssignSplit" >> beam.ParDo(
            _AssignFn(self._lists, self._codec, self._wheres)
        ).with_outputs(QUARANTINE_TAG, SPLIT_LISTS, _USED_TAG, main="records")
        line_refusals = (
            keyed[QUARANTINE_TAG],
            assigned[SPLIT_LISTS],
        ) | "SplitLineRefusals" >> beam.Flatten()
        tallies = (
            lines | "TallySplitLines" >> TallyEach(SPLIT_LISTS, Outcome.INPUT),
            keyed[SKIPPED_TAG]
            | "TallySplitLinesSkipped" >> TallyEach(SPLIT_LISTS, Outcome.SKIPPED),
            assigned[_USED_TAG] | "TallySplitLinesUsed" >> TallyEach(SPLIT_LISTS, Outcome.WRITTEN),
            line_refusals | "TallySplitLineRefusals" >> TallyQuarantine(SPLIT_LISTS),
        ) | "SplitListTallies" >> beam.Flatten()
        return SplitListed(assigned.records, assigned[QUARANTINE_TAG], tallies, line_refusals)
