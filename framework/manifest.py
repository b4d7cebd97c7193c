"""The run contract every pipeline shares: output layout, counts, manifest, exit code.

A pipeline counts what happens to its inputs as `Tally` elements (``input``,
``written``, ``skipped`` or ``quarantined`` with a reason, per named stage),
and `WriteRunRecords` sums them inside the pipeline into small files that
the driver reads back once the pipeline has succeeded (it writes the
quarantined records too, through the same file sink). Counting in the
pipeline rather than with Beam metrics keeps the counts exact (only committed
bundles count, a retried one is not counted twice) and works the same on
every runner, `--direct_running_mode=multi_processing` included.

After the run, `finish_run` turns the counts into a `Manifest`, writes it as
``<output_dir>/_manifest.json`` (renamed into place last, so its presence
means the run finished and its outputs are complete), prints a summary and
picks the exit code: `EXIT_OK`; `EXIT_FAILED` when more than
``--max_bad_fraction`` of all inputs were quarantined (the manifest is
written: every input is accounted for), or when the counts do not add up
(``input = written + skipped + quarantined`` per stage; no manifest then:
records are missing). `EXIT_USAGE` is for bad flags and inputs, found by
`match_inputs` and the pipelines before anything runs, and for output
folders that cannot be written (see `datathon_etl.framework.output_folders`,
which also owns the claim that keeps a second run out). A Dataflow run
that the driver does not see finish (``--dry_run``, ``--template_location``,
``--no_wait_until_finish``; see `no_counts_reason`) has no counts:
`finish_run` says so and writes no manifest.

Layout of ``--output_dir``: the outputs, plus the reserved names
``_manifest.json``, ``_quarantine/`` (JSON lines, see
`datathon_etl.framework.quarantine`), ``_tmp/`` (scratch, deleted at the
end of a successful run and at the start of the next) and ``_run.lock``
(held while a run writes there).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from enum import StrEnum
from typing import Any, Final, TextIO

import apache_beam as beam
import attrs
from apache_beam.io.filesystem import BeamIOError, CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import (
    GoogleCloudOptions,
    PipelineOptions,
    StandardOptions,
    TestOptions,
)
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.windowed_value import WindowedValue

from datathon_etl.framework.quarantine import Quarantined
from datathon_etl.framework.sharded_files import (
    Writable,
    WriteShardedFiles,
    make_local_folders,
)
from datathon_etl.framework.sources.regular_files import NotARegularFileError, check_regular_file

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "IMAGES",
    "LOCK_NAME",
    "RESERVED_NAMES",
    "TFRECORD_SHARDS",
    "Manifest",
    "ManifestMismatchError",
    "Outcome",
    "OutputOptions",
    "RunLayout",
    "StageCounts",
    "Tally",
    "TallyEach",
    "TallyQuarantine",
    "UsageError",
    "WriteRunRecords",
    "check_output_options",
    "delete_tree",
    "finish_run",
    "is_dry_run",
    "match_inputs",
    "no_counts_reason",
    "read_run_lines",
    "read_tallies",
    "uses_dataflow",
]

IMAGES = "images"
"""Manifest stage: the images (tar members, image files); every output holds the written ones."""
TFRECORD_SHARDS = "tfrecord_shards"
"""Manifest parameter: records per TFRecord shard, read back from the shards after the run."""

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2

MANIFEST_NAME: Final = "_manifest.json"
QUARANTINE_DIR: Final = "_quarantine"
TEMP_DIR: Final = "_tmp"
JSONL: Final = ".jsonl"
LOCK_NAME: Final = "_run.lock"
"""The file a run holds locked in each output folder (`datathon_etl.framework.output_folders`)."""
RESERVED_NAMES: Final = frozenset({MANIFEST_NAME, QUARANTINE_DIR, TEMP_DIR, LOCK_NAME})
"""Top-level names under ``--output_dir`` that no output may take."""


class UsageError(Exception):
    """A bad flag or input, found before the pipeline is built: one line for stderr."""


class Outcome(StrEnum):
    """What happened to an input of a stage."""

    INPUT = "input"
    WRITTEN = "written"
    SKIPPED = "skipped"
    QUARANTINED = "quarantined"


@attrs.frozen
class Tally:
    """``count`` inputs of ``stage`` had ``outcome`` (and ``reason``, if quarantined)."""

    stage: str
    outcome: Outcome = attrs.field(converter=Outcome)
    reason: str = ""
    count: int = 1

    def to_json(self) -> str:
        """Returns one JSON line."""
        return json.dumps(
            {
                "stage": self.stage,
                "outcome": str(self.outcome),
                "reason": self.reason,
                "count": self.count,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, line: str) -> Tally:
        """Parses a line written by `to_json`."""
        data: dict[str, Any] = json.loads(line)
        return cls(**data)


def _sorted_counts(counts: Mapping[str, int]) -> dict[str, int]:
    return dict(sorted((str(key), value) for key, value in counts.items() if value))


@attrs.frozen
class StageCounts:
    """What happened to one stage's inputs. Balanced when every input is accounted for.

    Attributes:
        input: Inputs the stage saw.
        written: Inputs that made an output.
        skipped: Inputs left out on purpose (a filter flag), not errors.
        quarantined: Refused inputs per `Reason` code.
    """

    input: int = 0
    written: int = 0
    skipped: int = 0
    quarantined: Mapping[str, int] = attrs.field(factory=dict, converter=_sorted_counts)

    @property
    def quarantined_total(self) -> int:
        """All quarantined inputs, whatever the reason."""
        return sum(self.quarantined.values())

    @property
    def balanced(self) -> bool:
        """Whether ``input == written + skipped + quarantined``."""
        return self.input == self.written + self.skipped + self.quarantined_total

    def to_dict(self) -> dict[str, Any]:
        """Returns the counts as plain JSON-able data."""
        return {
            "input": self.input,
            "written": self.written,
            "skipped": self.skipped,
            "quarantined": dict(self.quarantined),
        }


class ManifestMismatchError(ValueError):
    """A manifest whose counts do not add up."""


def _sorted_stages(stages: Mapping[str, StageCounts]) -> dict[str, StageCounts]:
    return dict(sorted(stages.items()))


@attrs.frozen
class Manifest:
    """The counts of one run, per stage, and the parameters it ran with."""

    pipeline: str
    stages: Mapping[str, StageCounts] = attrs.field(converter=_sorted_stages)
    parameters: Mapping[str, Any] = attrs.field(factory=dict)

    @classmethod
    def from_tallies(
        cls, pipeline: str, tallies: Iterable[Tally], parameters: Mapping[str, Any] | None = None
    ) -> Manifest:
        """Sums tallies into a manifest."""
        plain: dict[str, dict[Outcome, int]] = defaultdict(lambda: defaultdict(int))
        refused: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for tally in tallies:
            if tally.outcome is Outcome.QUARANTINED:
                refused[tally.stage][tally.reason] += tally.count
            else:
                plain[tally.stage][tally.outcome] += tally.count
        stages = {
            stage: StageCounts(
                input=plain[stage][Outcome.INPUT],
                written=plain[stage][Outcome.WRITTEN],
                skipped=plain[stage][Outcome.SKIPPED],
                quarantined=refused[stage],
            )
            for stage in set(plain) | set(refused)
        }
        return cls(pipeline, stages, dict(parameters or {}))

    @property
    def input_total(self) -> int:
        """Inputs over all stages."""
        return sum(counts.input for counts in self.stages.values())

    @property
    def quarantined_total(self) -> int:
        """Quarantined inputs over all stages."""
        return sum(counts.quarantined_total for counts in self.stages.values())

    def bad_fraction(self) -> float:
        """Quarantined inputs over all inputs, all stages together (0 when none)."""
        return self.quarantined_total / self.input_total if self.input_total else 0.0

    def problems(self) -> list[str]:
        """One line per stage whose counts do not add up, and one if the shards lack images."""
        lines = [
            f"{stage}: input {c.input} != written {c.written} + skipped {c.skipped}"
            f" + quarantined {c.quarantined_total}"
            for stage, c in self.stages.items()
            if not c.balanced
        ]
        shards, images = self.parameters.get(TFRECORD_SHARDS), self.stages.get(IMAGES)
        if shards is not None and images is not None and sum(shards.values()) != images.written:
            lines.append(
                f"tfrecords: {sum(shards.values())} records in the shards"
                f" != {images.written} images written"
            )
        return lines

    def check(self) -> None:
        """Verifies ``input = written + skipped + quarantined`` for every stage.

        Raises:
            ManifestMismatchError: Naming each stage that does not add up.
        """
        if problems := self.problems():
            raise ManifestMismatchError(f"{self.pipeline}: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """Returns the manifest as plain JSON-able data."""
        return {
            "pipeline": self.pipeline,
            "parameters": dict(self.parameters),
            "stages": {stage: counts.to_dict() for stage, counts in self.stages.items()},
        }

    def to_json(self) -> str:
        """Returns sorted-key, indented JSON with a trailing newline."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        """Parses what `to_dict` returns."""
        stages = {name: StageCounts(**counts) for name, counts in data["stages"].items()}
        return cls(data["pipeline"], stages, data.get("parameters", {}))

    def write(self, uri: str, temp_dir: str | None = None) -> None:
        """Writes `to_json` to ``uri`` (through Beam's FileSystems).

        Given ``temp_dir`` (on ``uri``'s filesystem), the file is written
        there and renamed to ``uri`` once complete: a write that fails (a full
        disk) leaves no partial manifest.
        """
        target = f"{temp_dir}/{MANIFEST_NAME}" if temp_dir else uri
        with FileSystems.create(target, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            f.write(self.to_json().encode("utf-8"))
        if target != uri:
            FileSystems.rename([target], [uri])

    @classmethod
    def read(cls, uri: str) -> Manifest:
        """Reads a manifest written by `write`."""
        with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            return cls.from_dict(json.loads(f.read().decode("utf-8")))

    def summary(self) -> str:
        """A few lines for people: one per stage."""
        lines = []
        for stage, c in self.stages.items():
            line = f"{self.pipeline}: {stage}: {c.input} in, {c.written} written"
            if c.skipped:
                line += f", {c.skipped} skipped"
            if c.quarantined:
                reasons = ", ".join(f"{reason} {n}" for reason, n in c.quarantined.items())
                line += f", {c.quarantined_total} quarantined ({reasons})"
            lines.append(line)
        return "\n".join(lines)


class OutputOptions(PipelineOptions):
    """Where a run writes, and how many refusals fail it."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("output")
        group.add_argument(
            "--output_dir",
            default=None,
            help=(
                "The output prefix, a local folder or gs://bucket/path. Besides the "
                f"outputs it holds {MANIFEST_NAME} (the run's counts, written last), "
                f"{QUARANTINE_DIR}/ (refused inputs as JSON lines) and {TEMP_DIR}/ "
                "(scratch, removed after a successful run)."
            ),
        )
        group.add_argument(
            "--max_bad_fraction",
            type=float,
            default=0.0,
            help=(
                "Exit non-zero when more than this fraction of all inputs (all stages "
                "together) was quarantined. Default 0: any quarantined input fails "
                "the run (its outputs and manifest are still written)."
            ),
        )


def check_output_options(options: OutputOptions, default: str | None = None) -> tuple[str, float]:
    """Returns (output_dir, max_bad_fraction), validated.

    Args:
        options: The flags.
        default: The output folder without ``--output_dir`` (None: required).

    Raises:
        UsageError: ``--output_dir`` missing, or the fraction outside [0, 1].
    """
    output_dir: str | None = options.output_dir or default
    if not output_dir:
        raise UsageError("--output_dir is required")
    fraction: float = options.max_bad_fraction
    if not 0.0 <= fraction <= 1.0:
        raise UsageError(f"--max_bad_fraction must be between 0 and 1, got {fraction}")
    return output_dir.rstrip("/") or "/", fraction


def match_inputs(patterns: Sequence[str], flag: str) -> dict[str, list[str]]:
    """Returns the files each glob matches (Beam's syntax: ``**`` crosses folders), sorted.

    Raises:
        UsageError: No pattern given, one that matches nothing, or a match
            that is a FIFO, a device or a link to one (never opened: it
            could hang the run or never end).
    """
    if not patterns:
        raise UsageError(f"{flag} is required")
    found: dict[str, list[str]] = {}
    for pattern in patterns:
        try:
            (result,) = FileSystems.match([pattern])
        except BeamIOError as e:
            raise UsageError(f"{flag}: cannot list {pattern!r}: {e}") from e
        paths = sorted(m.path for m in result.metadata_list)
        if not paths:
            raise UsageError(f"{flag}: {pattern!r} matches no file")
        for path in paths:
            try:
                check_regular_file(path)
            except NotARegularFileError as e:
                raise UsageError(f"{flag}: {e}; name regular files only") from e
        found[pattern] = paths
    return found


@attrs.frozen
class RunLayout:
    """Where a run's outputs, quarantine, manifest and scratch files go."""

    output_dir: str
    run_id: str = attrs.field(factory=lambda: uuid.uuid4().hex)

    @property
    def manifest_uri(self) -> str:
        """``<output_dir>/_manifest.json``."""
        return f"{self.output_dir}/{MANIFEST_NAME}"

    @property
    def quarantine_dir(self) -> str:
        """``<output_dir>/_quarantine``."""
        return f"{self.output_dir}/{QUARANTINE_DIR}"

    @property
    def quarantine_prefix(self) -> str:
        """The quarantine's file prefix."""
        return f"{self.quarantine_dir}/quarantine"

    @property
    def temp_dir(self) -> str:
        """This run's scratch folder, ``<output_dir>/_tmp/<run_id>``."""
        return f"{self.output_dir}/{TEMP_DIR}/{self.run_id}"

    @property
    def tallies_prefix(self) -> str:
        """The tallies' file prefix (see `read_tallies`)."""
        return f"{self.temp_dir}/tallies"

    @property
    def notes_prefix(self) -> str:
        """The notes' file prefix (per-study ingestion: leakage, absent labels)."""
        return f"{self.temp_dir}/notes"

    def relative(self, uri: str) -> str:
        """``uri`` (under ``output_dir``) relative to ``output_dir``."""
        return uri.removeprefix(f"{self.output_dir}/")

    @staticmethod
    def is_reserved(relative: str) -> bool:
        """Whether an output at ``relative`` would clash with the run's own files."""
        return relative.split("/", 1)[0] in RESERVED_NAMES

    def prepare(self) -> None:
        """Removes an earlier run's manifest, quarantine and scratch files.

        Neither manifest nor quarantine may pass for this run's; scratch files
        are what a failed run left (the folder is this run's alone once
        claimed: `datathon_etl.framework.output_folders.claim_outputs`).
        Makes the quarantine and scratch folders of a local ``output_dir``
        (`WriteRunRecords` moves its files into them).
        """
        delete_tree(f"{self.output_dir}/{TEMP_DIR}")
        delete_tree(self.quarantine_dir)
        if FileSystems.exists(self.manifest_uri):
            FileSystems.delete([self.manifest_uri])
        prefixes = (self.quarantine_prefix, self.tallies_prefix, self.notes_prefix)
        make_local_folders(self.output_dir, [self.relative(prefix) for prefix in prefixes])

    def cleanup(self) -> None:
        """Removes the scratch folder."""
        delete_tree(f"{self.output_dir}/{TEMP_DIR}")


def delete_tree(uri: str) -> None:
    """Deletes a local folder or a GCS prefix and everything under it, if there."""
    # A local folder is deleted by its path (recursively), a GCS prefix by
    # matching everything under it; each form finds nothing on the other.
    root = uri.rstrip("/")
    for target in (root, f"{root}/**"):
        with contextlib.suppress(BeamIOError):  # nothing there
            FileSystems.delete([target])


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
                suffix=JSONL,
                prefix=_pair_prefix,
                write=_write_line,
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


_DATAFLOW_RUNNERS: Final = frozenset({"dataflow", "dataflowrunner", "testdataflowrunner"})


def uses_dataflow(options: PipelineOptions) -> bool:
    """Whether ``--runner`` is Dataflow (``DataflowRunner``, ``dataflow`` or its full path)."""
    runner = options.view_as(StandardOptions).runner
    if runner is None:
        return False
    name = runner if isinstance(runner, str) else type(runner).__name__
    return name.rsplit(".", 1)[-1].lower() in _DATAFLOW_RUNNERS


def is_dry_run(options: PipelineOptions) -> bool:
    """Whether the job is only built and checked (``--dry_run``): nothing may be touched."""
    return bool(options.view_as(TestOptions).dry_run)


def no_counts_reason(options: PipelineOptions) -> str | None:
    """Why the driver has no counts once ``Pipeline.run`` returns, or ``None`` when it has.

    Only with the ``DataflowRunner``: ``--dry_run`` builds and checks the
    job and submits nothing; ``--template_location`` writes a template that
    runs when launched; ``--no_wait_until_finish`` submits the job and
    returns while it runs. There are then no counts to read and no manifest
    to write.
    """
    if not uses_dataflow(options):
        return None
    if options.view_as(TestOptions).dry_run:
        return "--dry_run: the Dataflow job was built and checked, not submitted"
    template: str | None = options.view_as(GoogleCloudOptions).template_location
    if template:
        return f"--template_location: template written to {template}, to run when launched"
    if options.view_as(StandardOptions).no_wait_until_finish:
        return "--no_wait_until_finish: the Dataflow job was submitted and runs on"
    return None


def finish_run(
    layout: RunLayout,
    pipeline: str,
    *,
    max_bad_fraction: float,
    parameters: Mapping[str, Any] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    options: PipelineOptions | None = None,
) -> int:
    """After a successful pipeline: writes the manifest last, prints, returns the exit code.

    Counts that do not add up write no manifest (records are missing, so the
    outputs are not complete): the problems are printed and the result is
    `EXIT_FAILED`. Given the run's ``options``, a Dataflow run the driver did
    not see finish (see `no_counts_reason`) reads no counts and writes no
    manifest: it says so and returns `EXIT_OK`.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    reason = no_counts_reason(options) if options is not None else None
    if reason is not None:
        print(f"{pipeline}: {reason}; nothing ran, so no manifest", file=out)
        return EXIT_OK
    manifest = Manifest.from_tallies(pipeline, read_tallies(layout.tallies_prefix), parameters)
    print(manifest.summary(), file=out)
    if problems := manifest.problems():
        layout.cleanup()
        print(
            f"{pipeline}: counts do not add up, so no manifest was written: {'; '.join(problems)}",
            file=err,
        )
        return EXIT_FAILED
    manifest.write(layout.manifest_uri, layout.temp_dir)
    layout.cleanup()
    print(f"{pipeline}: manifest {layout.manifest_uri}", file=out)
    bad, total = manifest.quarantined_total, manifest.input_total
    if bad:
        print(f"{pipeline}: {bad} quarantined, see {layout.quarantine_dir}/", file=out)
    if bad and manifest.bad_fraction() > max_bad_fraction:
        print(
            f"{pipeline}: {bad} of {total} inputs quarantined "
            f"({manifest.bad_fraction():.2%} > --max_bad_fraction {max_bad_fraction:g})",
            file=err,
        )
        return EXIT_FAILED
    return EXIT_OK
