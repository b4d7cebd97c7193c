"""Command-line flags for every pipeline: ours checked strictly, Beam's passed through.

Beam silently discards flags it does not know, so a typo (``--input_tar``)
would run with a default. Here every flag must be known to one of the
`PipelineOptions` classes (ours or Beam's); anything else is a usage error
with a suggestion, raised before the pipeline is built.

Without ``--runner``, pipelines run on Beam's FnApiRunner, the engine Beam's
DirectRunner runs batch pipelines on. The DirectRunner itself would first try
its Prism runner, which it downloads at run time (or fails to, offline, after
starting a worker pool: half a second of every run), and which ignores
``--direct_running_mode`` and ``--direct_num_workers``.

Beam reads each options class's flags with a parser of that class alone, which
takes ``--query=SELECT a, b`` (an unknown flag whose value holds a space) for
a plain value: after a many-valued flag (``--input_prefix a/ --query=...``) it
would become one more input. `parse_flags` splits such ``--flag=value`` pairs
in two, which every parser reads the same.

Commands skip Beam's type checking at construction: our modules' annotations
are strings (``from __future__ import annotations``), which Beam reads as
``Any``, so the check proves nothing and costs 0.17 s a run. Pipelines built
without `parse_flags` (as many tests build them) keep Beam's default.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import gc
import logging
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from apache_beam.options.pipeline_options import (
    GoogleCloudOptions,
    PipelineOptions,
    StandardOptions,
    TypeOptions,
    _BeamArgumentParser,
)
from apache_beam.runners.runner import PipelineRunner

from datathon_etl.framework.cli import version
from datathon_etl.framework.errors import UsageError
from datathon_etl.framework.runner import is_dry_run, uses_dataflow

__all__ = [
    "local_runner",
    "parse_flags",
    "split_spaced_values",
]

BEAM_EPILOG = """\
Beam's own flags pass through unchanged, e.g. --runner (by default Beam's
FnApiRunner, on this machine; DataflowRunner), --project, --region, --temp_location,
--staging_location, --setup_file, --direct_num_workers,
--direct_running_mode (in_memory, multi_threading, multi_processing).
DataflowRunner without --region: gcloud's compute/region, else us-central1
(as when the original pipelines were written).
"""


class _UsageErrors(argparse.ArgumentParser):
    """An argparse parser whose errors are `UsageError` (one line), not usage text and exit."""

    def error(self, message: str) -> Any:
        """Raises `UsageError` with argparse's ``message``."""
        raise UsageError(f"{message}; see --help")


class _AllFlags(_UsageErrors, _BeamArgumentParser):
    """Beam's parser, whose errors (a malformed value of one of Beam's flags) are one line."""


def _all_flags_parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = _AllFlags(allow_abbrev=False)
    # As PipelineOptions.get_all_options: one instance of each direct subclass.
    classes = {str(cls): cls for cls in PipelineOptions.__subclasses__()}
    for cls in classes.values():
        cls._add_argparse_args(parser)
    return parser


def _formatter(required: frozenset[str]) -> type[argparse.HelpFormatter]:
    """A help formatter that shows the flags whose dest is in ``required`` as required.

    They are checked by the pipelines (some only with others), so argparse
    must not refuse a command line without them; it only shows them without
    brackets. A ``+`` flag whose metavar holds a space (``H W [C]``) shows the
    metavar as it is.
    """

    class Formatter(argparse.RawDescriptionHelpFormatter):
        def add_usage(
            self,
            usage: str | None,
            actions: Iterable[argparse.Action],
            groups: Iterable[Any],
            prefix: str | None = None,
        ) -> None:
            shown = []
            for action in actions:
                if action.dest in required:
                    action = copy.copy(action)
                    action.required = True
                shown.append(action)
            super().add_usage(usage, shown, groups, prefix)

        def _format_args(self, action: argparse.Action, default_metavar: str) -> str:
            if action.nargs == "+" and isinstance(action.metavar, str) and " " in action.metavar:
                return action.metavar
            return super()._format_args(action, default_metavar)

    return Formatter


def split_spaced_values(args: Iterable[str]) -> list[str]:
    """Returns ``args`` with each ``--flag=value`` whose value holds a space split in two.

    Every parser then reads the value as the flag's, even one that does not
    know the flag (see the module docstring). A value that starts with ``-``
    stays joined: split, argparse would take it for a flag.
    """
    result = []
    for arg in args:
        name, equals, value = arg.partition("=")
        if (
            arg.startswith("--")
            and equals
            and " " not in name
            and " " in value
            and not value.startswith("-")
        ):
            result += [name, value]
        else:
            result.append(arg)
    return result


def parse_flags(
    prog: str,
    description: str,
    option_classes: Sequence[type[PipelineOptions]],
    argv: Sequence[str] | None,
    *,
    required: Iterable[str] = (),
    output_dir_default: str | None = None,
) -> PipelineOptions:
    """Parses a pipeline's command line.

    Args:
        prog: The command's name for usage lines (``datathon-etl untar``).
        description: What the command does, for ``--help``.
        option_classes: This pipeline's own option classes, shown by ``--help``.
        argv: The arguments (None: ``sys.argv[1:]``).
        required: Dests of the flags the command cannot run without, shown
            as required by ``--help`` (the pipeline checks them).
        output_dir_default: Where the run's records go without
            ``--output_dir``, for its ``--help`` (None: it is required).

    Returns:
        The options, all views available.

    Raises:
        UsageError: A flag that no options class knows, or a malformed value
            of one of ours.
        SystemExit: ``--help`` or ``--version`` (0).
    """
    args = split_spaced_values(sys.argv[1:] if argv is None else argv)
    needed = frozenset(required)
    ours = _UsageErrors(
        prog=prog,
        description=description,
        epilog=BEAM_EPILOG,
        formatter_class=_formatter(needed),
        allow_abbrev=False,
    )
    ours.add_argument("--version", action="version", version=f"datathon-etl {version()}")
    for cls in option_classes:
        cls._add_argparse_args(ours)
    for action in ours._actions:
        if action.dest in needed:
            action.help = f"{action.help} Required."
        elif action.dest == "output_dir" and output_dir_default:
            action.help = f"{action.help} Default: {output_dir_default}."
    ours.parse_known_args(args)  # --help, --version, and malformed values of our flags
    everything = _all_flags_parser()
    _, unknown = everything.parse_known_args(args)
    if unknown:
        first = unknown[0].split("=", 1)[0]
        known = [o for a in everything._actions for o in a.option_strings]
        close = difflib.get_close_matches(first, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        what = "unknown flag" if first.startswith("-") else "unexpected argument"
        raise UsageError(f"{what} {first!r}{hint}; see --help")
    # Local worker processes do not know our flags and say so at WARN level
    # for every worker; their errors still show.
    logging.getLogger("apache_beam.runners.portability.local_job_service").setLevel(logging.ERROR)
    options = PipelineOptions(args)
    if is_dry_run(options) and not uses_dataflow(options):
        raise UsageError(
            "--dry_run needs --runner DataflowRunner (it builds and checks the Dataflow job); "
            "other runners would run the pipeline and write its outputs"
        )
    if uses_dataflow(options):
        _default_region(options)
    options.view_as(TypeOptions).pipeline_type_check = False
    standard = options.view_as(StandardOptions)
    if standard.runner is None:
        standard.runner = local_runner(options)
    _freeze_startup_objects()
    return options


DEFAULT_REGION = "us-central1"
"""Dataflow's region when neither --region nor gcloud names one, as when the original ran."""


def _default_region(options: PipelineOptions) -> None:
    """Gives a Dataflow run without ``--region`` Beam's default, else `DEFAULT_REGION`.

    Beam finds a default in ``$CLOUDSDK_COMPUTE_REGION`` or gcloud's
    ``compute/region``; without one it stops with a traceback, where the
    original pipelines' command lines (which give none) ran in us-central1.
    """
    from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner

    cloud = options.view_as(GoogleCloudOptions)
    if cloud.region:
        return
    cloud.region = DataflowRunner().get_default_gcp_region() or DEFAULT_REGION


_frozen = False


def _freeze_startup_objects() -> None:
    """Exempts what exists now (imported modules, mostly) from later full collections.

    They live as long as the run, and a full collection would scan every one
    of them again (about 45 ms each time after Beam's imports). Once per process.
    """
    global _frozen
    if not _frozen:
        _frozen = True
        gc.freeze()


def local_runner(options: PipelineOptions) -> PipelineRunner:
    """Beam's FnApiRunner, set up with ``options`` as Beam's DirectRunner sets it up."""
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    # The options reach the workers (multi_processing: other processes) this way.
    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    provision = beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)
    _flush_whole_elements_only()
    return fn_runner.FnApiRunner(provision_info=fn_runner.ExtendedProvisionInfo(provision))


def _flush_whole_elements_only() -> None:
    """Turns off the timed flush of Beam's in-process gRPC workers (``multi_threading``).

    Their output streams are also flushed every second from a timer thread,
    which can fire between the writes that encode one element: the receiver
    then decodes half an element, and elements are silently lost or misread
    (or a misread length makes memory grow without bound). A limit that is not
    positive leaves only the size-based flush, which the writing thread does
    between elements. ``multi_processing`` workers flush by size already.
    BENCHMARKS.md has a plain Beam reproduction.
    """
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    worker_handlers.DATA_BUFFER_TIME_LIMIT_MS = -1
