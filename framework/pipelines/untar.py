r"""Untar: tar archives (plain, gzip, bzip2, xz, zstd) -> files under --output_dir.

Replaces the original ``untar_gcs.py`` (same ``--input_tars`` and
``--output_dir``). Each member is written at ``<output_dir>/<member name>``;
nothing is ever written outside that prefix. Example::

    python -m datathon_etl.framework.pipelines.untar \
        --input_tars 'gs://bucket/mimic-cxr-raw/train_p*.tar' \
        --output_dir gs://bucket/mimic-cxr-jpg/ \
        --path_match_regex '.*\.jpg' \
        --runner DataflowRunner --project project --temp_location gs://bucket/tmp/

How the work spreads: archives are indexed in parallel; an uncompressed
archive yields only (archive, offset, size) refs, which are grouped by output
name (the shuffle that spreads the copies over all workers and settles
duplicate names) and copied by byte range, so one huge tar is extracted by
every worker at once. A compressed archive cannot be read at an offset: one
worker streams it and writes its members as it goes.

What is refused goes to ``<output_dir>/_quarantine/`` (see
`datathon_etl.framework.archives.tar` for the rules); members that do not
match ``--path_match_regex`` are skipped and counted, not quarantined: not
wanting a file is not an error. A member name taken by two archives is
written once, from the archive whose path sorts first, the other copy
quarantined as ``duplicate_output_path``; so is a name repeated within one
archive (the first copy wins). Members of compressed archives take part too:
their bytes are first written to scratch files where they were read, and
only their names are shuffled; the winner's file is then renamed into place.

``<output_dir>/_manifest.json``, written last, counts two stages: ``archives``
(input = written, i.e. read to the end, + quarantined as truncated or
corrupt) and ``members`` (input = written + skipped + quarantined). Exit
codes: 0; 1 when more than ``--max_bad_fraction`` of all inputs was
quarantined or the counts do not add up; 2 for bad or unknown flags, a
glob that matches nothing or an output folder that cannot be used (checked
before the pipeline is built: see `datathon_etl.framework.output_folders`),
and for a disk that fills up mid-run.

Flags: `TarOptions` (``--input_tars``, ``--max_member_bytes``),
`MatchOptions` (``--path_match_regex``), `OutputOptions` (``--output_dir``,
``--max_bad_fraction``), and Beam's own (``--runner`` ...), which pass through.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from operator import attrgetter
from typing import Any

import apache_beam as beam
import attrs
from apache_beam.options.pipeline_options import PipelineOptions

from datathon_etl.framework.archives import (
    ARCHIVE_REASONS,
    DEFAULT_MAX_MEMBER_BYTES,
    ArchiveSummary,
    ExtractMembers,
    IndexTars,
    UniqueOutputs,
)
from datathon_etl.framework.archives.options import TarOptions
from datathon_etl.framework.cli import exit_process
from datathon_etl.framework.command import PipelineCommand
from datathon_etl.framework.errors import UsageError
from datathon_etl.framework.manifest import Outcome, Tally
from datathon_etl.framework.output_folders import check_apart
from datathon_etl.framework.preflight import check_cloud_resources
from datathon_etl.framework.quarantine import (
    QUARANTINE_TAG,
    Quarantined,
    Reason,
    Stage,
)
from datathon_etl.framework.run_layout import OutputOptions, RunLayout, resolve_output_dir
from datathon_etl.framework.run_records import TallyEach, TallyQuarantine, WriteRunRecords
from datathon_etl.framework.sources.options import MatchOptions, match_inputs, path_match_regex

__all__ = ["ARCHIVES", "MEMBERS", "Untar", "build_pipeline", "main"]

ARCHIVES = "archives"
"""Manifest stage: the archive files matched by --input_tars."""
MEMBERS = "members"
"""Manifest stage: the archives' members (directories excluded)."""


def _stage_of(record: Quarantined) -> str:
    return ARCHIVES if record.reason in ARCHIVE_REASONS else MEMBERS


def _summary_tallies(summary: ArchiveSummary) -> Iterator[Tally]:
    if summary.complete:
        yield Tally(ARCHIVES, Outcome.WRITTEN)
    if summary.members:
        yield Tally(MEMBERS, Outcome.INPUT, count=summary.members)
    if summary.skipped:
        yield Tally(MEMBERS, Outcome.SKIPPED, count=summary.skipped)


class _RefuseReservedFn(beam.DoFn):
    """Members named like the run's own files (``_manifest.json``, ...) are refused."""

    def process(self, member: Any) -> Iterator[Any]:
        if RunLayout.is_reserved(member.name):
            detail = f"{member.name.split('/', 1)[0]!r} is reserved for the run's own files"
            record = Quarantined(
                member.name, Stage.UNTAR, Reason.UNSAFE_MEMBER_PATH, detail, member.source
            )
            yield beam.pvalue.TaggedOutput(QUARANTINE_TAG, record)
        else:
            yield member


def build_pipeline(
    p: beam.Pipeline,
    archives: Sequence[str],
    layout: RunLayout,
    *,
    path_match_regex: str | None = None,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
) -> None:
    """Adds the untar steps for ``archives`` (URIs) to ``p``."""
    # IndexTars spreads the archives over the workers itself.
    uris = p | "Archives" >> beam.Create(list(archives), reshuffle=False)
    # Members of compressed archives are copied to scratch files as the
    # archive streams by (memory does not grow with a member's size), and only
    # their names join the refs in the shuffle that settles duplicate names
    # and spreads the copies over the workers.
    index = uris | "Index" >> IndexTars(
        path_match_regex=path_match_regex,
        max_member_bytes=max_member_bytes,
        stage_dir=layout.temp_dir,
    )
    checked = (index.refs, index.loaded) | "AllMembers" >> beam.Flatten()
    allowed = checked | "RefuseReserved" >> beam.ParDo(_RefuseReservedFn()).with_outputs(
        QUARANTINE_TAG, main="ok"
    )
    unique = allowed.ok | "UniqueNames" >> UniqueOutputs(
        attrgetter("name"), attrgetter("source"), Stage.UNTAR
    )
    extracted = unique.unique | "Extract" >> ExtractMembers(
        output_dir=layout.output_dir, temp_dir=layout.temp_dir
    )

    quarantine = (
        index.quarantine,
        allowed[QUARANTINE_TAG],
        unique.quarantine,
        extracted.quarantine,
    ) | "AllQuarantine" >> beam.Flatten()

    tallies = (
        uris | "TallyArchives" >> TallyEach(ARCHIVES, Outcome.INPUT),
        index.summaries | "TallySummaries" >> beam.FlatMap(_summary_tallies),
        quarantine | "TallyQuarantine" >> TallyQuarantine(_stage_of),
        extracted.written | "TallyWritten" >> TallyEach(MEMBERS, Outcome.WRITTEN),
    ) | "AllTallies" >> beam.Flatten()
    _ = (quarantine, tallies) | "WriteRunRecords" >> WriteRunRecords(layout)


@attrs.frozen
class _Job:
    archives: tuple[str, ...]
    layout: RunLayout
    path_match_regex: str | None
    max_member_bytes: int


class Untar(PipelineCommand[_Job]):
    """``datathon-etl untar``."""

    name = "untar"
    description = "Extract tar archives (plain, gzip, bzip2, xz, zstd) under --output_dir."
    option_classes = (TarOptions, MatchOptions, OutputOptions)
    required = ("input_tars", "output_dir")

    def plan(self, options: PipelineOptions) -> _Job:
        """Checks the flags, the cloud resources and the archives."""
        tars = options.view_as(TarOptions)
        output_dir, _ = resolve_output_dir(self.prog, options)
        regex = path_match_regex(options)
        if tars.max_member_bytes <= 0:
            raise UsageError("--max_member_bytes must be positive")
        check_cloud_resources(
            options, locations={"--input_tars": tars.input_tars, "--output_dir": output_dir}
        )
        matched = match_inputs(tars.input_tars or [], "--input_tars")
        check_apart({"--output_dir": output_dir}, {"--input_tars": tars.input_tars})
        return _Job(
            archives=tuple(sorted({path for paths in matched.values() for path in paths})),
            layout=RunLayout(output_dir),
            path_match_regex=regex,
            max_member_bytes=tars.max_member_bytes,
        )

    def build(self, p: beam.Pipeline, job: _Job) -> None:
        """The untar steps."""
        build_pipeline(
            p,
            job.archives,
            job.layout,
            path_match_regex=job.path_match_regex,
            max_member_bytes=job.max_member_bytes,
        )

    def parameters(self, options: PipelineOptions, job: _Job, counted: bool) -> dict[str, Any]:
        """The flags that shape the run."""
        tars = options.view_as(TarOptions)
        return {
            "input_tars": list(tars.input_tars),
            "path_match_regex": job.path_match_regex,
            "max_member_bytes": job.max_member_bytes,
        }


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the untar pipeline; returns the exit code (see the module docstring)."""
    return Untar().main(argv)


if __name__ == "__main__":
    exit_process(main())
