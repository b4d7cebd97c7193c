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

``--gcs_input_prefix`` (the original's flag) is an alias of
``--input_pattern``; unlike the original, a value is a glob like any other:
``gs://bucket/raw/`` matches the files directly in that folder, use
``gs://bucket/raw/**`` to include subfolders.

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
import sys
from collections.abc import Iterator, Sequence
from operator import attrgetter
from typing import Any

import apache_beam as beam
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
from datathon_etl.framework.flags import parse_flags
from datathon_etl.framework.manifest import (
    EXIT_USAGE,
    Outcome,
    OutputOptions,
    RunLayout,
    TallyEach,
    TallyQuarantine,
    UsageError,
    WriteRunRecords,
    check_output_options,
    finish_run,
    is_dry_run,
    match_inputs,
)
from datathon_etl.framework.output_folders import check_apart, claim_outputs, guarded
from datathon_etl.framework.preflight import check_cloud_resources
from datathon_etl.framework.quarantine import (
    QUARANTINE_TAG,
    Quarantined,
    Reason,
    Stage,
)
from datathon_etl.framework.sources.options import InputFilesOptions, input_glob, input_root

__all__ = [
    "DEFAULT_PATH_SUB_PATTERN",
    "FILES",
    "DecompressOptions",
    "build_pipeline",
    "main",
    "relative_inputs",
]

PIPELINE = "decompress"
FILES = "files"
"""Manifest stage: the files matched by --input_pattern."""
DEFAULT_PATH_SUB_PATTERN = r"^(.*)\.(?:gz|gzip|bz2|xz|lzma|zst|zstd|deflate|zz)$"
_SKIPPED_TAG = "skipped"
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


class _PlanFn(beam.DoFn):
    """(path, relative path) -> a job, a skip, or a refusal of the output path."""

    def __init__(self, output_dir: str, pattern: str, repl: str) -> None:
        super().__init__()
        self._output_dir = output_dir
        self._pattern = pattern
        self._repl = repl

    def setup(self) -> None:
        self._regex = re.compile(self._pattern)

    def process(self, element: tuple[str, str]) -> Iterator[Any]:
        source, relative = element
        if not self._regex.search(relative):
            yield beam.pvalue.TaggedOutput(_SKIPPED_TAG, source)
            return
        target = self._regex.sub(self._repl, relative, count=1)
        try:
            target = safe_relative_path(target)
            if RunLayout.is_reserved(target):
                raise UnsafePathError("reserved for the run's own files")
        except UnsafePathError as e:
            detail = f"{relative!r} -> {target!r}: {e}"
            record = Quarantined(
                relative, Stage.DECOMPRESS, Reason.UNSAFE_OUTPUT_PATH, detail, source
            )
            yield beam.pvalue.TaggedOutput(QUARANTINE_TAG, record)
            return
        yield DecompressJob(source, output_path(self._output_dir, target))


def build_pipeline(
    p: beam.Pipeline,
    inputs: Sequence[tuple[str, str]],
    layout: RunLayout,
    *,
    path_sub_pattern: str = DEFAULT_PATH_SUB_PATTERN,
    path_sub_repl: str = r"\1",
    compression: str = CompressionTypes.AUTO,
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
) -> None:
    """Adds the decompress steps for ``inputs`` ((path, relative path) pairs) to ``p``."""
    files = p | "Files" >> beam.Create(list(inputs))
    plan = files | "Plan" >> beam.ParDo(
        _PlanFn(layout.output_dir, path_sub_pattern, path_sub_repl)
    ).with_outputs(QUARANTINE_TAG, _SKIPPED_TAG, main="jobs")
    # Grouping by destination settles clashes and spreads the files over workers.
    unique = plan.jobs | "UniqueDestinations" >> UniqueOutputs(
        attrgetter("destination"), attrgetter("source"), Stage.DECOMPRESS
    )
    results = unique.unique | "Decompress" >> DecompressFiles(
        temp_dir=layout.temp_dir,
        compression=compression,
        max_decompressed_bytes=max_decompressed_bytes,
    )

    quarantine = (
        plan[QUARANTINE_TAG],
        unique.quarantine,
        results.quarantine,
    ) | "AllQuarantine" >> beam.Flatten()

    tallies = (
        files | "TallyFiles" >> TallyEach(FILES, Outcome.INPUT),
        plan[_SKIPPED_TAG] | "TallySkipped" >> TallyEach(FILES, Outcome.SKIPPED),
        results.written | "TallyWritten" >> TallyEach(FILES, Outcome.WRITTEN),
        quarantine | "TallyQuarantine" >> TallyQuarantine(FILES),
    ) | "AllTallies" >> beam.Flatten()
    _ = (quarantine, tallies) | "WriteRunRecords" >> WriteRunRecords(layout)


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


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the decompress pipeline; returns the exit code (see the module docstring)."""
    return guarded(PIPELINE, lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    try:
        options = parse_flags(
            f"datathon-etl {PIPELINE}",
            "Decompress gzip, bzip2, xz, zstd and deflate files under --output_dir.",
            [InputFilesOptions, DecompressOptions, OutputOptions],
            argv,
        )
        flags = options.view_as(DecompressOptions)
        patterns = [input_glob(p) for p in options.view_as(InputFilesOptions).input_prefix or []]
        output_dir, max_bad_fraction = check_output_options(options.view_as(OutputOptions))
        _check_substitution(flags.path_sub_pattern, flags.path_sub_repl)
        if flags.max_decompressed_bytes <= 0:
            raise UsageError("--max_decompressed_bytes must be positive")
        check_cloud_resources(
            options, locations={"--input_pattern": patterns, "--output_dir": output_dir}
        )
        matched = match_inputs(patterns, "--input_pattern")
        check_apart({"--output_dir": output_dir}, {"--input_pattern": patterns})
    except UsageError as e:
        print(f"{PIPELINE}: {e}", file=sys.stderr)
        return EXIT_USAGE

    layout = RunLayout(output_dir)
    if not is_dry_run(options):  # a dry run builds the job and leaves the outputs alone
        claim_outputs({"--output_dir": output_dir})
        layout.prepare()
    with beam.Pipeline(options=options) as p:
        build_pipeline(
            p,
            relative_inputs(matched),
            layout,
            path_sub_pattern=flags.path_sub_pattern,
            path_sub_repl=flags.path_sub_repl,
            compression=flags.compression,
            max_decompressed_bytes=flags.max_decompressed_bytes,
        )
    parameters = {
        "input_pattern": patterns,
        "path_sub_pattern": flags.path_sub_pattern,
        "path_sub_repl": flags.path_sub_repl,
        "compression": flags.compression,
        "max_decompressed_bytes": flags.max_decompressed_bytes,
    }
    return finish_run(
        layout,
        PIPELINE,
        max_bad_fraction=max_bad_fraction,
        parameters=parameters,
        options=options,
    )


if __name__ == "__main__":
    exit_process(main())
