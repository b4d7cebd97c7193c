"""The official split from list files: one file per split, one image path per line.

NIH ChestX-ray14 ships its split as ``train_val_list.txt`` and
``test_list.txt``. A data set declares such files (`Dataset.split_lists`);
their lines are one more per-image table of the join (`join`), keyed by
the image's canonical path, its value the split's code: the image's split
key field is set from the line naming it.

Every line ends written (with its image), skipped (its image is left out by
``--path_match_regex``) or quarantined, under the manifest stage
`SPLIT_LISTS`: a path that does not parse (``unparseable_path``), or as any
table row at the join: an image listed again (``duplicate_label_row``), no
image (``labels_without_image``), an image refused (its reason). An image no
list names is ``missing_split``; one that two lists disagree on is
``duplicate_label_row``; its label row goes with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, NamedTuple

import apache_beam as beam
import attrs

from datathon_etl.framework.ingest.assemble import REFUSED_TAG
from datathon_etl.framework.ingest.join import TableRow
from datathon_etl.framework.ingest.transforms import SKIPPED_TAG
from datathon_etl.framework.manifest import Outcome
from datathon_etl.framework.quarantine import Quarantined, Reason, Stage
from datathon_etl.framework.run_records import TallyEach
from datathon_etl.framework.sources.csv_rows import open_text

__all__ = ["SPLIT_LISTS", "ListLine", "ReadSplitLists", "SplitListLines", "read_list_lines"]

SPLIT_LISTS = "split_lists"
"""Manifest stage: the lines of the split's list files."""


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


class _KeyLineFn(beam.DoFn):
    """`ListLine` -> ``(canonical path, TableRow of its code)``; skipped or refused otherwise."""

    def __init__(self, parse_path: Any, format_path: Any, regex: str | None) -> None:
        super().__init__()
        self._parse_path = parse_path
        self._format_path = format_path
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
            yield beam.pvalue.TaggedOutput(REFUSED_TAG, (SPLIT_LISTS, record))
            return
        yield path, TableRow(line.where, line.code)


class SplitListLines(NamedTuple):
    """What `ReadSplitLists` returns."""

    rows: beam.PCollection
    """``(path, TableRow)``: each line, its value the split's code."""
    refusals: beam.PCollection
    """``(SPLIT_LISTS, Quarantined)``: lines whose path does not parse."""
    tallies: beam.PCollection
    """The lines read and skipped."""


class ReadSplitLists(beam.PTransform):
    """The list files -> their lines as rows of the split list table, keyed by path.

    Args:
        uris: The list files to read, each with its split's code.
        parse_path: The layout's path -> key, to key each line.
        format_path: The layout's key -> canonical path.
        path_match_regex: Lines of images it leaves out are skipped.
    """

    def __init__(
        self, uris: dict[str, int], parse_path: Any, format_path: Any, path_match_regex: str | None
    ) -> None:
        super().__init__()
        self._uris = uris
        self._key_line = _KeyLineFn(parse_path, format_path, path_match_regex)

    def expand(self, p: beam.pvalue.PBegin) -> SplitListLines:
        """Reads and keys the lines."""
        lines = (
            p
            | "SplitListFiles" >> beam.Create(sorted(self._uris.items()), reshuffle=False)
            | "ReadSplitLists" >> beam.FlatMapTuple(read_list_lines)
        )
        keyed = lines | "KeySplitLines" >> beam.ParDo(self._key_line).with_outputs(
            REFUSED_TAG, SKIPPED_TAG, main="rows"
        )
        tallies = (
            lines | "TallySplitLines" >> TallyEach(SPLIT_LISTS, Outcome.INPUT),
            keyed[SKIPPED_TAG]
            | "TallySplitLinesSkipped" >> TallyEach(SPLIT_LISTS, Outcome.SKIPPED),
        ) | "SplitListTallies" >> beam.Flatten()
        return SplitListLines(keyed.rows, keyed[REFUSED_TAG], tallies)
