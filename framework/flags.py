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

Commands skip Beam's type checking at construction: our modules' annotations
are strings (``from __future__ import annotations``), which Beam reads as
``Any``, so the check proves nothing and costs 0.17 s a run. Pipelines built
without `parse_flags` (as many tests build them) keep Beam's default.
"""

from __future__ import annotations

import argparse
import difflib
import gc
import logging
import sys
from collections.abc import Sequence

from apache_beam.options.pipeline_options import (
    PipelineOptions,
    StandardOptions,
    TypeOptions,
    _BeamArgumentParser,
)
from apache_beam.runners.runner import PipelineRunner

from datathon_etl.framework.manifest import UsageError, is_dry_run, uses_dataflow

__all__ = ["local_runner", "parse_flags"]

BEAM_EPILOG = """\
Beam's own flags pass through unchanged, e.g. --runner (by default Beam's
FnApiRunner, on this machine; DataflowRunner), --project, --region, --temp_location,
--staging_location, --setup_file, --direct_num_workers,
--direct_running_mode (in_memory, multi_threading, multi_processing).
"""


def _all_flags_parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = _BeamArgumentParser(allow_abbrev=False)
    # As PipelineOptions.get_all_options: one instance of each direct subclass.
    classes = {str(cls): cls for cls in PipelineOptions.__subclasses__()}
    for cls in classes.values():
        cls._add_argparse_args(parser)
    return parser


def parse_flags(
    prog: str,
    description: str,
    option_classes: Sequence[type[PipelineOptions]],
    argv: Sequence[str] | None,
) -> PipelineOptions:
    """Parses a pipeline's command line.

    Args:
        prog: The command's name for usage lines (``datathon-etl untar``).
        description: What the command does, for ``--help``.
        option_classes: This pipeline's own option classes, shown by ``--help``.
        argv: The arguments (None: ``sys.argv[1:]``).

    Returns:
        The options, all views available.

    Raises:
        UsageError: A flag that no options class knows.
        SystemExit: ``--help`` (0) or a malformed value of one of our flags (2),
            as argparse does.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    ours = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=BEAM_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    for cls in option_classes:
        cls._add_argparse_args(ours)
    ours.parse_known_args(args)  # --help, and type errors in our flags
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
    options.view_as(TypeOptions).pipeline_type_check = False
    standard = options.view_as(StandardOptions)
    if standard.runner is None:
        standard.runner = local_runner(options)
    _freeze_startup_objects()
    return options


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
