"""The end of every command's run: the manifest written last, the summary, the exit code.

`finish_run` turns the counts the pipeline wrote (`datathon_etl.framework.run_records`)
into a `Manifest`, writes it as ``<output_dir>/_manifest.json`` (renamed into
place last, so its presence means the run finished and its outputs are
complete), prints a summary and picks the exit code: `EXIT_OK`;
`EXIT_FAILED` when more than ``--max_bad_fraction`` of all inputs were
quarantined (the manifest is written: every input is accounted for), or
when the counts do not add up (``input = written + skipped + quarantined``
per stage; no manifest then: records are missing). A Dataflow run that the
driver does not see finish (``--dry_run``, ``--template_location``,
``--no_wait_until_finish``; see
`datathon_etl.framework.runner.no_counts_reason`) has no counts:
`finish_run` says so and writes no manifest.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TextIO

from apache_beam.options.pipeline_options import PipelineOptions

from datathon_etl.framework.errors import EXIT_FAILED, EXIT_OK
from datathon_etl.framework.manifest import Manifest
from datathon_etl.framework.run_layout import RunLayout
from datathon_etl.framework.run_records import read_tallies
from datathon_etl.framework.runner import no_counts_reason

__all__ = ["finish_run"]


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
