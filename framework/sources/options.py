"""Which inputs a pipeline reads: `InputFilesOptions`, `MatchOptions`, `match_inputs`."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence

from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from datathon_etl.framework.errors import UsageError
from datathon_etl.framework.sources.regular_files import NotARegularFileError, check_regular_file

__all__ = [
    "InputFilesOptions",
    "MatchOptions",
    "glob_flag",
    "input_glob",
    "input_patterns",
    "input_root",
    "match_inputs",
    "path_match_regex",
    "prefix_glob",
    "relative_path",
]


def glob_flag(pattern: str) -> str:
    """Reads a glob given as a flag's value as a shell would: relative to the current folder.

    Beam lists a local glob from the folder in front of its first wildcard,
    and finds none in ``part0*.tar``; ``./part0*.tar`` is the same glob with
    that folder spelt out. The ``type`` of every input glob flag.
    """
    fixed = re.match(r"^[^[*?]*", pattern)
    head = fixed.group(0) if fixed else ""
    if head != pattern and "/" not in head and "://" not in pattern:
        return f"./{pattern}"
    return pattern


class MatchOptions(PipelineOptions):
    """The original pipelines' ``--path_match_regex``, the same in every pipeline."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("input selection")
        group.add_argument(
            "--path_match_regex",
            default=None,
            help=(
                "Only inputs (files, or tar members) whose relative path matches this "
                "regular expression in full are read; the others are counted as "
                "skipped, not quarantined (default: all)."
            ),
        )


def path_match_regex(options: PipelineOptions) -> str | None:
    """Returns ``--path_match_regex``, checked.

    Raises:
        UsageError: It is not a valid regular expression.
    """
    regex: str | None = options.view_as(MatchOptions).path_match_regex
    if regex is not None:
        try:
            re.compile(regex)
        except re.error as e:
            raise UsageError(f"--path_match_regex: {e}") from e
    return regex


class InputFilesOptions(PipelineOptions):
    """Which input files a file-based pipeline reads (images, compressed files)."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("input files")
        group.add_argument(
            "--input_prefix",
            "--input_pattern",
            dest="input_prefix",
            nargs="+",
            type=glob_flag,
            default=None,
            help=(
                "One or more folders (ending in '/': everything below them) or globs "
                "('**' crosses folders), local or gs://. A file's relative path is its "
                "location under the folder its pattern starts in. --input_pattern is "
                "an alias."
            ),
        )
        group.add_argument(
            "--gcs_input_prefix",
            nargs="+",
            default=None,
            help=(
                "The original pipelines' flag: every file whose location starts with "
                "this prefix (local or gs://; a value with a wildcard is a glob). "
                "Relative paths are as for --input_prefix."
            ),
        )


def input_patterns(options: PipelineOptions) -> list[str]:
    """Returns the globs that ``--input_prefix`` and ``--gcs_input_prefix`` name, in order."""
    files = options.view_as(InputFilesOptions)
    return [input_glob(p) for p in files.input_prefix or []] + [
        prefix_glob(p) for p in files.gcs_input_prefix or []
    ]


def prefix_glob(prefix: str) -> str:
    """Returns the glob of every file whose location starts with ``prefix`` (a glob: itself)."""
    if re.search(r"[\[*?]", prefix):
        return glob_flag(prefix)
    return glob_flag(prefix + "**")


def input_glob(pattern: str) -> str:
    """Returns the glob for an input pattern: a folder ``dir/`` means ``dir/**``."""
    return pattern + "**" if pattern.endswith("/") else pattern


def input_root(pattern: str) -> str:
    """Returns the folder a pattern's relative paths start from.

    That is the pattern up to its last ``/`` before the first wildcard.
    """
    fixed = re.match(r"^[^[*?]*", pattern)
    head = fixed.group(0) if fixed else ""
    return head[: head.rfind("/") + 1]


def relative_path(uri: str, roots: Sequence[str]) -> str:
    """Returns ``uri`` relative to the first root it lies under (else unchanged)."""
    for root in roots:
        if root and uri.startswith(root):
            return uri[len(root) :]
    return uri


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
