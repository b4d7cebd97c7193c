r"""Decompress: gzip, bzip2, xz/lzma, zstd and deflate files -> files under --output_dir.

Replaces the original ``decompress_gcs.py`` and keeps its ``--path_sub_pattern``
and ``--path_sub_repl``: each matched file's path, relative to the folder its
``--input_pattern`` glob starts in, must match ``--path_sub_pattern``
(``re.search``) and its first match is replaced by ``--path_sub_repl``
(capture groups allowed) to give the output's path under ``--output_dir``.
Files that do not match are skipped and counted, as the original passed
them by. The default removes a compression extension::

    python -m datathon_etl.framework.pipelines.decompress \
        --input_pattern 'gs://bucket/raw/**.gz' \
        --output_dir gs://bucket/unzipped/

    # gs://bucket/raw/a/b.csv.gz -> gs://bucket/unzipped/a/b.csv

    # Into a sibling folder, keeping only .csv.gz files:
    --path_sub_pattern '^(.*)\.csv\.gz$' --path_sub_repl 'csv/\1.csv'

With ``--gcs_input_prefix`` (the original's flag) instead, the rewrite
applies to each file's full location and gives its output's, as the
original did: every file whose location starts with the prefix, the output
anywhere on the same file system (never over a file the run reads: a
rewrite that would overwrite one stops the run before it starts, in one
line; files the pattern skips, such as an earlier run's outputs, may be
replaced). The
original's two uses::

    # Beside the input: gs://bucket/raw/a.csv.gz -> gs://bucket/raw/a.csv
    --gcs_input_prefix gs://bucket/raw/ --path_sub_pattern '\.gz$' --path_sub_repl ''
    # Into a sibling folder: -> gs://bucket/unzipped/a.csv
    --gcs_input_prefix gs://bucket/raw/ \
        --path_sub_pattern 'gs://bucket/raw/(.*)\.gz$' --path_sub_repl 'gs://bucket/unzipped/\1'

``--output_dir`` then holds only the run's records (manifest, quarantine,
scratch files); by default a folder beside the inputs' (``gs://bucket/raw.decompress``).

The format comes from each file's first bytes (``--compression=auto``) or
is forced. Every file is decompressed in a streaming copy of constant memory,
to a scratch name that is renamed when complete. Quarantined: a truncated or
corrupt file (``corrupt_compressed_file``), an unrecognised one
(``unknown_compression``), one that decompresses past
``--max_decompressed_bytes`` (``decompressed_too_large``, partial output
removed), an output path that leaves ``--output_dir`` or takes a reserved
name (``unsafe_output_path``), and all but the first (by input path) of
several files that map to the same output (``duplicate_output_path``). The
other files finish.

``<output_dir>/_manifest.json``, written last, counts one stage, ``files``:
input = written + skipped + quarantined. Exit codes as for untar: 0; 1 when
more than ``--max_bad_fraction`` of the files was quarantined or the counts
do not add up; 2 for bad or unknown flags, a glob that matches nothing, an
output folder that cannot be used, or a disk that fills up mid-run.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from operator import attrgetter
from typing import Any

import apache_beam as beam
import attrs
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.options.pipeline_options import PipelineOptions

from datathon_etl.framework.archives import (
    COMPRESSIONS,
    DEFAULT_MAX_DECOMPRESSED_BYTES,
    DecompressFiles,
    DecompressJob,
    UniqueOutputs,
    UnsafePathError,
    output_path,
    safe_relative_path,
)
from datathon_etl.framework.cli import exit_process
from datathon_etl.framework.command import PipelineCommand
from datathon_etl.framework.errors import UsageError
from datathon_etl.framework.manifest import Outcome
from datathon_etl.framework.output_folders import check_apart
from datathon_etl.framework.preflight import check_cloud_resources
from datathon_etl.framework.quarantine import (
    Quarantined,
    Reason,
    Stage,
)
from datathon_etl.framework.run_layout import OutputOptions, RunLayout, resolve_output_dir
from datathon_etl.framework.run_records import TallyEach, TallyQuarantine, WriteRunRecords
from datathon_etl.framework.sources.options import (
    InputFilesOptions,
    input_patterns,
    input_root,
    match_inputs,
    relative_path,
)

__all__ = [
    "DEFAULT_PATH_SUB_PATTERN",
    "FILES",
    "Decompress",
    "DecompressOptions",
    "Plan",
    "build_pipeline",
    "main",
    "plan_outputs",
    "records_beside",
    "relative_inputs",
]

FILES = "files"
"""Manifest stage: the files matched by --input_pattern."""
DEFAULT_PATH_SUB_PATTERN = r"^(.*)\.(?:gz|gzip|bz2|xz|lzma|zst|zstd|deflate|zz)$"
_GROUP_REFERENCE = re.compile(r"\\(?:g<([^>]*)>|(\d{1,2}))")


class DecompressOptions(PipelineOptions):
    """The decompress pipeline's own flags (output flags: `OutputOptions`)."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("decompress")
        group.add_argument(
            "--path_sub_pattern",
            default=DEFAULT_PATH_SUB_PATTERN,
            help=(
                "A file is decompressed only if its relative path matches this regular "
                "expression (re.search); the first match is replaced by "
                "--path_sub_repl to name the output. Default: a compression extension."
            ),
        )
        group.add_argument(
            "--path_sub_repl",
            default=r"\1",
            help=r"The replacement, with capture groups \1, \2, \g<name>. Default \1.",
        )
        group.add_argument(
            "--compression",
            default=CompressionTypes.AUTO,
            choices=[CompressionTypes.AUTO, *COMPRESSIONS],
            help=(
                "auto (default): from each file's first bytes; or force one format "
                "(lzma reads .xz and .lzma; deflate reads zlib and raw deflate)."
            ),
        )
        group.add_argument(
            "--max_decompressed_bytes",
            type=int,
            default=DEFAULT_MAX_DECOMPRESSED_BYTES,
            help=(
                "A file that decompresses to more is quarantined and its partial output "
                f"removed. Default {DEFAULT_MAX_DECOMPRESSED_BYTES} (64 GiB)."
            ),
        )


def relative_inputs(matched: dict[str, list[str]]) -> list[tuple[str, str]]:
    """(path, path relative to its glob's root folder) per file, the first glob winning."""
    relative: dict[str, str] = {}
    for pattern, paths in matched.items():
        root = input_root(pattern)
        for path in paths:
            relative.setdefault(path, path[len(root) :] if path.startswith(root) else path)
    return sorted(relative.items())


@attrs.frozen
class Plan:
    """Each input's fate, settled before the pipeline runs.

    Attributes:
        jobs: The files to decompress, with their outputs.
        skipped: Inputs --path_sub_pattern does not match.
        refused: Inputs whose output location is unsafe.
    """

    jobs: tuple[DecompressJob, ...]
    skipped: tuple[str, ...]
    refused: tuple[Quarantined, ...]


def _full_location(target: str, source: str) -> str:
    """Checks and normalises an output location rewritten from the input's full location.

    Raises:
        UnsafePathError: A location of another kind than the input's (gs://,
            an absolute or a relative local path), or with a ``..`` component.
    """

    def kind(location: str) -> str:
        return "gs" if location.startswith("gs://") else str(location.startswith("/"))

    if kind(source) != kind(target):
        raise UnsafePathError("not a location of the input's kind (gs://, absolute, relative)")
    if target.startswith("gs://"):
        bucket, _, rest = target[len("gs://") :].partition("/")
        return f"gs://{bucket}/{safe_relative_path(rest)}"
    if target.startswith("/"):
        return "/" + safe_relative_path(target[1:])
    return safe_relative_path(target)


def plan_outputs(
    inputs: Sequence[tuple[str, str]],
    layout: RunLayout,
    *,
    path_sub_pattern: str = DEFAULT_PATH_SUB_PATTERN,
    path_sub_repl: str = r"\1",
    full_locations: bool = False,
) -> Plan:
    """Rewrites each input's path into its output's location.

    Args:
        inputs: (location, path relative to its glob's folder) pairs.
        layout: The run's folder: outputs go under it, unless ``full_locations``.
        path_sub_pattern: Inputs it does not match (``re.search``) are skipped.
        path_sub_repl: Replaces the pattern's first match.
        full_locations: The original's way: the rewrite applies to each
            input's full location and gives its output's, anywhere on the
            same file system but in the run's own folder.

    Raises:
        UsageError: An output would replace a file the run reads (itself or
            another).
    """
    regex = re.compile(path_sub_pattern)
    jobs, skipped, refused = [], [], []
    for source, relative in inputs:
        name = source if full_locations else relative
        if not regex.search(name):
            skipped.append(source)
            continue
        target = regex.sub(path_sub_repl, name, count=1)
        try:
            if full_locations:
                destination = _full_location(target, source)
                inside = relative_path(destination, [f"{layout.output_dir}/"])
                if inside != destination and RunLayout.is_reserved(inside):
                    raise UnsafePathError("reserved for the run's own files")
            else:
                destination = output_path(layout.output_dir, safe_relative_path(target))
                if RunLayout.is_reserved(safe_relative_path(target)):
                    raise UnsafePathError("reserved for the run's own files")
        except UnsafePathError as e:
            detail = f"{name!r} -> {target!r}: {e}"
            refused.append(
                Quarantined(relative, Stage.DECOMPRESS, Reason.UNSAFE_OUTPUT_PATH, detail, source)
            )
            continue
        jobs.append(DecompressJob(source, destination))
    # Files the pattern skips are not read: a re-run replaces its earlier outputs.
    read = {job.source for job in jobs}
    for job in jobs:
        if job.destination in read:
            what = "itself" if job.destination == job.source else job.destination
            raise UsageError(
                f"--path_sub_pattern {path_sub_pattern!r} and --path_sub_repl "
                f"{path_sub_repl!r} write {job.source} over {what}, an input of this run; "
                "rewrite each input to a location that is not one"
            )
    return Plan(tuple(jobs), tuple(skipped), tuple(refused))


def build_pipeline(
    p: beam.Pipeline,
    plan: Plan,
    layout: RunLayout,
    *,
    compression: str = CompressionTypes.AUTO,
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
) -> None:
    """Adds the decompress steps of ``plan`` to ``p``."""
    jobs = p | "Jobs" >> beam.Create(list(plan.jobs))
    skipped = p | "Skipped" >> beam.Create(list(plan.skipped))
    refused = p | "UnsafeOutputs" >> beam.Create(list(plan.refused))
    # Grouping by destination settles clashes and spreads the files over workers.
    unique = jobs | "UniqueDestinations" >> UniqueOutputs(
        attrgetter("destination"), attrgetter("source"), Stage.DECOMPRESS
    )
    results = unique.unique | "Decompress" >> DecompressFiles(
        temp_dir=layout.temp_dir,
        compression=compression,
        max_decompressed_bytes=max_decompressed_bytes,
    )

    quarantine = (
        refused,
        unique.quarantine,
        results.quarantine,
    ) | "AllQuarantine" >> beam.Flatten()

    tallies = (
        jobs | "TallyFiles" >> TallyEach(FILES, Outcome.INPUT),
        skipped | "TallySkippedIn" >> TallyEach(FILES, Outcome.INPUT),
        refused | "TallyRefusedIn" >> TallyEach(FILES, Outcome.INPUT),
        skipped | "TallySkipped" >> TallyEach(FILES, Outcome.SKIPPED),
        results.written | "TallyWritten" >> TallyEach(FILES, Outcome.WRITTEN),
        quarantine | "TallyQuarantine" >> TallyQuarantine(FILES),
    ) | "AllTallies" >> beam.Flatten()
    _ = (quarantine, tallies) | "WriteRunRecords" >> WriteRunRecords(layout)


def records_beside(patterns: Sequence[str]) -> str:
    """The default folder of a run's records with --gcs_input_prefix: beside the inputs' folder.

    ``gs://bucket/raw/`` gives ``gs://bucket/raw.decompress``.

    Raises:
        UsageError: The inputs' folder is a bucket's or file system's top.
    """
    folder = input_root(patterns[0]).rstrip("/")
    if folder in ("", ".") or folder.endswith(":/") or re.fullmatch(r"gs://[^/]*", folder):
        raise UsageError(
            f"--gcs_input_prefix {patterns[0]!r} is at the top of its file system or bucket, "
            "with no folder beside it for the run's manifest and quarantine: give --output_dir"
        )
    return f"{folder}.decompress"


def _check_substitution(pattern: str, repl: str) -> None:
    try:
        regex = re.compile(pattern)
    except re.error as e:
        raise UsageError(f"--path_sub_pattern: {e}") from e
    for name, number in _GROUP_REFERENCE.findall(repl):
        group = name or number
        known = int(group) <= regex.groups if group.isdigit() else group in regex.groupindex
        if not known:
            raise UsageError(
                f"--path_sub_repl refers to group {group!r}, which --path_sub_pattern "
                f"{pattern!r} does not have"
            )


@attrs.frozen
class _Job:
    plan: Plan
    layout: RunLayout
    patterns: list[str]
    full_locations: bool


class Decompress(PipelineCommand[_Job]):
    """``datathon-etl decompress``."""

    name = "decompress"
    description = (
        "Decompress gzip, bzip2, xz, zstd and deflate files under --output_dir, or, "
        "with --gcs_input_prefix, where --path_sub_repl says (as the original did)."
    )
    option_classes = (InputFilesOptions, DecompressOptions, OutputOptions)
    output_dir_default = (
        "required with --input_pattern; with --gcs_input_prefix, a folder "
        "beside the inputs' (gs://bucket/raw/ -> gs://bucket/raw.decompress) "
        "that holds the run's records only"
    )

    def plan(self, options: PipelineOptions) -> _Job:
        """Checks the flags, the cloud resources and the files; settles every output path."""
        flags = options.view_as(DecompressOptions)
        files = options.view_as(InputFilesOptions)
        full_locations = bool(files.gcs_input_prefix)
        if full_locations and files.input_prefix:
            raise UsageError(
                "give --gcs_input_prefix (each file's full location rewritten, as the "
                "original did) or --input_pattern (paths under --output_dir), not both"
            )
        flag = "--gcs_input_prefix" if full_locations else "--input_pattern"
        patterns = input_patterns(options)
        if not patterns:
            raise UsageError("--input_pattern (or --gcs_input_prefix) is required")
        output_dir, _ = resolve_output_dir(
            self.prog, options, records_beside(patterns) if full_locations else None
        )
        _check_substitution(flags.path_sub_pattern, flags.path_sub_repl)
        if flags.max_decompressed_bytes <= 0:
            raise UsageError("--max_decompressed_bytes must be positive")
        check_cloud_resources(options, locations={flag: patterns, "--output_dir": output_dir})
        matched = match_inputs(patterns, flag)
        layout = RunLayout(output_dir)
        inputs = relative_inputs(matched)
        plan = plan_outputs(
            [(source, source) for source, _ in inputs] if full_locations else inputs,
            layout,
            path_sub_pattern=flags.path_sub_pattern,
            path_sub_repl=flags.path_sub_repl,
            full_locations=full_locations,
        )
        check_apart({"--output_dir": output_dir}, {flag: patterns})
        return _Job(
            plan=plan,
            layout=layout,
            patterns=patterns,
            full_locations=full_locations,
        )

    def build(self, p: beam.Pipeline, job: _Job) -> None:
        """The decompress steps."""
        flags = p.options.view_as(DecompressOptions)
        build_pipeline(
            p,
            job.plan,
            job.layout,
            compression=flags.compression,
            max_decompressed_bytes=flags.max_decompressed_bytes,
        )

    def parameters(self, options: PipelineOptions, job: _Job, counted: bool) -> dict[str, Any]:
        """The flags that shape the run."""
        flags = options.view_as(DecompressOptions)
        return {
            "input_pattern": job.patterns,
            "full_locations": job.full_locations,
            "path_sub_pattern": flags.path_sub_pattern,
            "path_sub_repl": flags.path_sub_repl,
            "compression": flags.compression,
            "max_decompressed_bytes": flags.max_decompressed_bytes,
        }


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the decompress pipeline; returns the exit code (see the module docstring)."""
    return Decompress().main(argv)


if __name__ == "__main__":
    exit_process(main())
