"""The run's record files, written by the pipeline: quarantined records, tallies, notes.

`TallyEach` and `TallyQuarantine` count a stage's elements as `Tally`
elements; `WriteRunRecords` sums the tallies inside the pipeline into small
files that the driver reads back (`read_tallies`) once the pipeline has
succeeded, and writes the quarantined records through the same file sink.
Counting in the pipeline rather than with Beam metrics keeps the counts
exact (only committed bundles count, a retried one is not counted twice) and
works the same on every runner, ``--direct_running_mode=multi_processing``
included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import apache_beam as beam
import attrs
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.windowed_value import WindowedValue

from datathon_etl.framework.manifest import Outcome, Tally
from datathon_etl.framework.quarantine import Quarantined
from datathon_etl.framework.run_layout import JSONL, RunLayout
from datathon_etl.framework.sharded_files import Records, Writable, WriteShardedFiles

__all__ = ["TallyEach", "TallyQuarantine", "WriteRunRecords", "read_run_lines", "read_tallies"]


class TallyEach(beam.PTransform[beam.PCollection[Any], beam.PCollection[Tally]]):
    """One ``(stage, outcome)`` tally per element, counted per bundle.

    Each bundle emits one tally with its count, not one per element: on the
    images stage that is two fewer elements per image to encode and sum. The
    tallies are in the global window, like everything in these batch pipelines.
    """

    def __init__(self, stage: str, outcome: Outcome) -> None:
        super().__init__()
        self._tally = Tally(stage, outcome)

    def expand(self, items: beam.PCollection[Any]) -> beam.PCollection[Tally]:
        """Counts the elements of each bundle."""
        return items | "Tally" >> beam.ParDo(_CountFn(self._tally))


class _CountFn(beam.DoFn):
    def __init__(self, tally: Tally) -> None:
        super().__init__()
        self._tally = tally
        self._count = 0

    def start_bundle(self) -> None:
        self._count = 0

    def process(self, _element: Any) -> None:
        self._count += 1

    def finish_bundle(self) -> Iterator[WindowedValue]:
        if self._count:
            yield GlobalWindows.windowed_value(attrs.evolve(self._tally, count=self._count))


class TallyQuarantine(beam.PTransform[beam.PCollection[Quarantined], beam.PCollection[Tally]]):
    """One ``quarantined`` tally per record, under its reason.

    Args:
        stage: The manifest stage, or a (picklable) function of the record
            that picks it, for transforms whose refusals belong to several.
    """

    def __init__(self, stage: str | Callable[[Quarantined], str]) -> None:
        super().__init__()
        self._stage = stage

    def expand(self, records: beam.PCollection[Quarantined]) -> beam.PCollection[Tally]:
        """Maps each record to its tally."""
        stage = self._stage

        def tally(record: Quarantined) -> Tally:
            name = stage if isinstance(stage, str) else stage(record)
            return Tally(name, Outcome.QUARANTINED, str(record.reason))

        return records | "Tally" >> beam.Map(tally)


class WriteRunRecords(beam.PTransform):
    """``(quarantined records, tallies[, notes])`` -> the run's JSON lines files, through one sink.

    Records go to ``<output_dir>/_quarantine/quarantine-SSSSS-of-NNNNN.jsonl``;
    tallies, summed per (stage, outcome, reason), to
    ``<temp_dir>/tallies-SSSSS-of-NNNNN.jsonl`` for `read_tallies`; notes
    (JSON strings) to ``<temp_dir>/notes-...`` for `read_run_lines`. One sink
    for all (`WriteShardedFiles`, a file per bundle that had lines), whose
    local folders `RunLayout.prepare` makes. A run that refused nothing has
    one empty quarantine file: ``_quarantine/*.jsonl`` matches after every
    run, so a query over it (``read_json`` in DuckDB, for one) finds no rows
    rather than no files.
    """

    def __init__(self, layout: RunLayout) -> None:
        super().__init__()
        self._layout = layout

    def expand(self, inputs: tuple[beam.PCollection, ...]) -> Any:
        """Sums the tallies and writes every kind of line; returns the written files."""
        records, tallies, *notes = inputs
        layout = self._layout
        quarantine = layout.relative(layout.quarantine_prefix)
        summed = layout.relative(layout.tallies_prefix)
        noted = layout.relative(layout.notes_prefix)
        record_lines = records | "QuarantineLines" >> beam.Map(
            lambda record: (quarantine, record.to_json())
        )
        tally_lines = (
            tallies
            | "Key" >> beam.Map(lambda t: ((t.stage, str(t.outcome), t.reason), t.count))
            | "Sum" >> beam.CombinePerKey(sum)
            | "TallyLines" >> beam.MapTuple(lambda key, count: (summed, _tally_json(key, count)))
        )
        note_lines = [
            lines | f"NoteLines{index}" >> beam.Map(lambda line: (noted, line))
            for index, lines in enumerate(notes)
        ]
        return (
            (record_lines, tally_lines, *note_lines)
            | "Lines" >> beam.Flatten()
            | "Write"
            >> WriteShardedFiles(
                layout.output_dir,
                f"{layout.temp_dir}/files",
                prefix=_pair_prefix,
                format=Records(JSONL, _write_line),
                prefixes=[quarantine, summed, noted],
            )
        )


def _pair_prefix(pair: tuple[str, str]) -> str:
    return pair[0]


def _write_line(fh: Writable, line: str) -> None:
    fh.write(line.encode("utf-8") + b"\n")


def _tally_json(key: tuple[str, str, str], count: int) -> str:
    stage, outcome, reason = key
    return Tally(stage, Outcome(outcome), reason, count).to_json()


def read_run_lines(file_prefix: str) -> list[str]:
    """The lines `WriteRunRecords` wrote at ``file_prefix`` (no file: none)."""
    (found,) = FileSystems.match([f"{file_prefix}-*{JSONL}"])
    lines = []
    for metadata in sorted(found.metadata_list, key=lambda m: m.path):
        with FileSystems.open(metadata.path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            lines += [line for line in f.read().decode("utf-8").splitlines() if line.strip()]
    return lines


def read_tallies(file_prefix: str) -> list[Tally]:
    """Reads the tallies `WriteRunRecords` wrote at ``file_prefix``."""
    return [Tally.from_json(line) for line in read_run_lines(file_prefix)]
