"""The command driver: what every command does around its own work, written once.

Every command (``untar``, ``decompress``, ``images-to-tfrecord``, and each
data set's ``ingest``, ``infer`` and ``evaluate``) is a `Command`: its flags
and description, `Command.plan` (checks the flags, the cloud resources and
the inputs; runs nothing) and `Command.execute`. `Command.main` parses the
flags (`datathon_etl.framework.flags.parse_flags`), plans and executes,
under `datathon_etl.framework.output_folders.guarded`: a `UsageError`, or a
disk that fills up mid-run, is one line on stderr (``datathon-etl
<command>: ...``) and `EXIT_USAGE`.

A command that runs a Beam pipeline is a `PipelineCommand`, which executes
the same way for all of them: unless ``--dry_run`` (which builds the
Dataflow job and touches no output), it claims the output folders, removes
the previous run's manifest, quarantine and scratch files and prepares its
TFRecord folders (and its other sharded outputs': WebDataset, Parquet); it
runs the pipeline; writes ``features.json`` beside the TFRecords; lists the
records of every shard in the manifest's parameters; beside each table it
wrote with coded columns, creates the decoded view (`create_decoded_view`)
and lists it there too; and `finish_run`
writes the manifest and picks the exit code:
`EXIT_OK`; `EXIT_FAILED` when more than ``--max_bad_fraction`` of all inputs
were quarantined (the manifest is written: every input is accounted for),
or when the counts do not add up (``input = written + skipped +
quarantined`` per stage; no manifest then: records are missing). A Dataflow
run that the driver does not see finish (``--dry_run``,
``--template_location``, ``--no_wait_until_finish``; see
`datathon_etl.framework.runner.no_counts_reason`) has no counts:
`finish_run` says so and writes no manifest.
"""

from __future__ import annotations

import abc
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, Protocol, TextIO, TypeVar

import apache_beam as beam
import attrs
import pyarrow as pa
from apache_beam.options.pipeline_options import PipelineOptions

from datathon_etl.framework.errors import EXIT_FAILED, EXIT_OK, UsageError
from datathon_etl.framework.flags import parse_flags
from datathon_etl.framework.manifest import DECODED_VIEWS, SHARD_COUNTS, TFRECORD_SHARDS, Manifest
from datathon_etl.framework.output_folders import Locations, claim_outputs, guarded
from datathon_etl.framework.run_layout import OutputOptions, RunLayout
from datathon_etl.framework.run_records import read_tallies
from datathon_etl.framework.runner import give_back_memory, is_dry_run, no_counts_reason
from datathon_etl.framework.sharded_files import ShardFormat
from datathon_etl.framework.tables import TableSpec
from datathon_etl.framework.tables.decoded_view import create_decoded_view
from datathon_etl.framework.tfrecords import FeatureSpec
from datathon_etl.framework.tfrecords.shards import (
    finish_folders,
    prepare_folders,
    shard_counts,
    write_features_file,
)

__all__ = [
    "Command",
    "PipelineCommand",
    "PipelineJob",
    "RunOutputs",
    "ShardedOutput",
    "TFRecordOutput",
    "TableOutput",
    "finish_run",
]

JobT = TypeVar("JobT")


class Command(abc.ABC, Generic[JobT]):
    """One ``datathon-etl`` command: its flags, how it plans a job and executes it.

    Attributes:
        name: The command as typed after ``datathon-etl`` (``untar``,
            ``mimic_cxr ingest``); the manifest's pipeline name.
        description: What it does, for ``--help``.
        option_classes: Its own options classes, shown by ``--help``.
        required: Dests of the flags it cannot run without, shown as such.
        output_dir_default: Where its records go without ``--output_dir``,
            for ``--help`` (None: required, or no such flag).
    """

    name: str
    description: str
    option_classes: Sequence[type[PipelineOptions]]
    required: Sequence[str] = ()
    output_dir_default: str | None = None

    @property
    def prog(self) -> str:
        """The command line's start, in usage lines and every message."""
        return f"datathon-etl {self.name}"

    def main(self, argv: Sequence[str] | None = None) -> int:
        """Parses ``argv``, plans and executes; returns the exit code (see the module docstring)."""
        return guarded(self.prog, lambda: self._main(argv))

    def _main(self, argv: Sequence[str] | None) -> int:
        options = parse_flags(
            self.prog,
            self.description,
            self.option_classes,
            argv,
            required=self.required,
            output_dir_default=self.output_dir_default,
        )
        return self.execute(options, self.plan(options))

    @abc.abstractmethod
    def plan(self, options: PipelineOptions) -> JobT:
        """Checks the flags, the cloud resources and the inputs; runs and writes nothing.

        Raises:
            UsageError: The first problem found, in one line.
        """

    @abc.abstractmethod
    def execute(self, options: PipelineOptions, job: JobT) -> int:
        """Does the work; returns the exit code."""


@attrs.frozen
class TFRecordOutput:
    """A run's TFRecord folders, which the driver prepares and finishes.

    Attributes:
        root: The ``--output_tfrecord_dir``.
        folders: The folders under it that get shards ("" = the root itself).
        specs: The features, for ``features.json``.
        description: More keys for ``features.json``.
    """

    root: str
    folders: tuple[str, ...]
    specs: tuple[FeatureSpec, ...]
    description: Mapping[str, Any] = attrs.field(factory=dict)

    def folder_uris(self) -> list[str]:
        """The folders' URIs."""
        return [f"{self.root}/{folder}" if folder else self.root for folder in self.folders]


@attrs.frozen
class ShardedOutput:
    """Another sharded output of a run (WebDataset, Parquet), prepared and finished likewise.

    Attributes:
        name: Its name in step names (``WebDataset``).
        root: The output's folder flag's value.
        folders: The folders under it that get shards, as the TFRecords'.
        format: How its shards are written; its suffix ends their names.
        count: Counts one shard's records, for the manifest.
        parameter: The manifest parameter listing records per shard (`SHARD_COUNTS`).
    """

    name: str
    root: str
    folders: tuple[str, ...]
    format: ShardFormat
    count: Callable[[str], int]
    parameter: str = attrs.field(validator=attrs.validators.in_(SHARD_COUNTS))

    @property
    def suffix(self) -> str:
        """The shards' ending (``.tar``, ``.parquet``)."""
        return self.format.suffix

    def folder_uris(self) -> list[str]:
        """The folders' URIs."""
        return [f"{self.root}/{folder}" if folder else self.root for folder in self.folders]


@attrs.frozen
class TableOutput:
    """A table a run writes, which gets its decoded view once the run is done.

    Attributes:
        spec: The table (DuckDB or BigQuery).
        schema: Its Arrow schema; coded columns carry their codes.
    """

    spec: TableSpec
    schema: pa.Schema


@attrs.frozen
class RunOutputs:
    """Where a pipeline command writes.

    Attributes:
        layout: The ``--output_dir``: manifest, quarantine, scratch files.
        folders: Every output folder the run claims, by flag (``--output_dir`` too).
        tfrecords: The TFRecord folders, if the run writes any.
        sharded: Its other sharded outputs.
        tables: The tables it writes, for their decoded views.
    """

    layout: RunLayout
    folders: Locations
    tfrecords: TFRecordOutput | None = None
    sharded: tuple[ShardedOutput, ...] = ()
    tables: tuple[TableOutput, ...] = ()


class PipelineJob(Protocol):
    """What a pipeline command plans: at least where its manifest and quarantine go."""

    @property
    def layout(self) -> RunLayout:
        """The run's ``--output_dir``."""
        ...


PipelineJobT = TypeVar("PipelineJobT", bound=PipelineJob)


class PipelineCommand(Command[PipelineJobT]):
    """A command that runs one Beam pipeline and writes a manifest (see the module docstring)."""

    def outputs(self, job: PipelineJobT) -> RunOutputs:
        """Where ``job`` writes; by default only in its ``--output_dir``."""
        return RunOutputs(job.layout, {"--output_dir": job.layout.output_dir})

    @abc.abstractmethod
    def build(self, p: beam.Pipeline, job: PipelineJobT) -> None:
        """Adds ``job``'s steps to ``p``."""

    @abc.abstractmethod
    def parameters(
        self, options: PipelineOptions, job: PipelineJobT, counted: bool
    ) -> dict[str, Any]:
        """After the pipeline: the manifest's parameters.

        Args:
            options: The flags.
            job: The job that ran.
            counted: Whether the pipeline ran to its end here (no
                `no_counts_reason`), so that its outputs can be read back.
        """

    def started(self, job: PipelineJobT) -> str | None:
        """A line printed before the pipeline runs (after ``<prog>: ``), if any."""
        return None

    def finished(self, job: PipelineJobT) -> str | None:
        """A line printed after the manifest (after ``<prog>: ``), if any."""
        return None

    def execute(self, options: PipelineOptions, job: PipelineJobT) -> int:
        """Prepares the outputs (not under ``--dry_run``), runs, writes the manifest."""
        outputs = self.outputs(job)
        tfrecords = outputs.tfrecords
        dry_run = is_dry_run(options)
        if not dry_run:  # a dry run builds the job and leaves the outputs alone
            claim_outputs(outputs.folders)
            outputs.layout.prepare()
            if tfrecords is not None:
                prepare_folders(tfrecords.root, tfrecords.folders)
            for sharded in outputs.sharded:
                prepare_folders(sharded.root, sharded.folders, sharded.suffix)
        if line := self.started(job):
            print(f"{self.prog}: {line}", flush=True)
        with beam.Pipeline(options=options) as p:
            self.build(p, job)
        give_back_memory()
        if tfrecords is not None and not dry_run:
            write_features_file(tfrecords.root, tfrecords.specs, **tfrecords.description)
        counted = no_counts_reason(options) is None
        parameters = self.parameters(options, job, counted)
        if tfrecords is not None and counted:
            finish_folders(tfrecords.root)
            parameters[TFRECORD_SHARDS] = shard_counts(tfrecords.folder_uris(), tfrecords.root)
        for sharded in outputs.sharded if counted else ():
            finish_folders(sharded.root)
            parameters[sharded.parameter] = shard_counts(
                sharded.folder_uris(), sharded.root, sharded.suffix, sharded.count
            )
        if counted and (views := _decoded_views(outputs.tables)):
            parameters[DECODED_VIEWS] = views
        code = finish_run(
            outputs.layout,
            self.name,
            max_bad_fraction=options.view_as(OutputOptions).max_bad_fraction,
            parameters=parameters,
            options=options,
        )
        if line := self.finished(job):
            print(f"{self.prog}: {line}")
        return code


def _decoded_views(tables: Sequence[TableOutput]) -> dict[str, str]:
    """Creates the decoded view of each table with coded columns; table -> view."""
    views = {}
    for table in tables:
        try:
            view = create_decoded_view(table.spec, table.schema)
        except ValueError as e:
            raise UsageError(f"{e}; the table {table.spec} is written") from e
        if view is not None:
            views[str(table.spec)] = str(view)
    return views


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
