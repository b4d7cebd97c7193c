"""`TarOptions`: the flags of every pipeline that reads tar archives.

Beam builds one parser from every `PipelineOptions` subclass imported and
argparse refuses a flag defined twice, so each flag is defined by exactly
one class; pipelines combine the classes they need.
"""

from __future__ import annotations

import argparse

from apache_beam.options.pipeline_options import PipelineOptions

from datathon_etl.framework.archives.tar import DEFAULT_MAX_MEMBER_BYTES
from datathon_etl.framework.sources.options import glob_flag

__all__ = ["TarOptions"]


class TarOptions(PipelineOptions):
    """Which tar archives to read, and how large a member may be."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("tar archives")
        group.add_argument(
            "--input_tars",
            nargs="+",
            type=glob_flag,
            default=None,
            help=(
                "One or more globs of tar archives, local or gs:// ('**' crosses "
                "folders). Plain, gzip, bzip2, xz and zstd archives are told apart by "
                "their first bytes, not their names; plain ones are read by byte range "
                "on every worker, compressed ones streamed by one."
            ),
        )
        group.add_argument(
            "--max_member_bytes",
            type=int,
            default=DEFAULT_MAX_MEMBER_BYTES,
            help=(
                "Members larger than this are quarantined (member_too_large), from "
                "their header, before any byte is read. Ingestion holds a member of a "
                "compressed archive in memory (about 2.5 times its size at most), so this "
                "bounds a worker's memory there; untar copies them to scratch files. "
                f"Default {DEFAULT_MAX_MEMBER_BYTES} (2 GiB)."
            ),
        )
