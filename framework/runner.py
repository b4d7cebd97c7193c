"""What the chosen runner means for a run: Dataflow or not, and whether the driver sees it end."""

from __future__ import annotations

import contextlib
import ctypes
import gc
from typing import Final

from apache_beam.options.pipeline_options import (
    GoogleCloudOptions,
    PipelineOptions,
    StandardOptions,
    TestOptions,
)

__all__ = ["give_back_memory", "is_dry_run", "no_counts_reason", "uses_dataflow"]

_DATAFLOW_RUNNERS: Final = frozenset({"dataflow", "dataflowrunner", "testdataflowrunner"})


def uses_dataflow(options: PipelineOptions) -> bool:
    """Whether ``--runner`` is Dataflow (``DataflowRunner``, ``dataflow`` or its full path)."""
    runner = options.view_as(StandardOptions).runner
    if runner is None:
        return False
    name = runner if isinstance(runner, str) else type(runner).__name__
    return name.rsplit(".", 1)[-1].lower() in _DATAFLOW_RUNNERS


def give_back_memory() -> None:
    """Returns the memory a finished local pipeline freed to the system.

    The local runner's buffers are freed when it ends, but the C allocator
    keeps the pages; what runs next (the manifest, the data card) would add to
    that peak instead of reusing it. A no-op where the C library has no
    ``malloc_trim`` (not glibc).
    """
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


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
