"""`TarOptions`: the flags of every pipeline that reads tar archives.

``--input_tars``, ``--path_match_regex`` and ``--max_member_bytes`` mean the
same in the untar pipeline and in dataset ingestion, so they are defined
once, here. Beam builds one parser from every `PipelineOptions` subclass
imported, and argparse refuses a flag defined twice; so that a pipeline
whose own options class still defines these flags can be imported beside
this one, `TarOptions` leaves out any of them already defined. This module
is deliberately not imported by the package's ``__init__``: it registers
only when a pipeline imports it.
"""

from __future__ import annotations

import argparse
from typing import Any, Final

from apache_beam.options.pipeline_options import PipelineOptions

from datathon_etl.framework.archives.tar import DEFAULT_MAX_MEMBER_BYTES

__all__ = ["TarOptions"]

_FLAGS: Final[tuple[tuple[str, dict[str, Any]], ...]] = (
    (
        "--input_tars",
        {
            "nargs": "+",
            "default": None,
            "help": (
                "One or more globs of tar archives, local or gs:// ('**' crosses "
                "folders). Plain, gzip, bzip2, xz and zstd archives are told apart by "
                "their first bytes, not their names; plain ones are read by byte range "
                "on every worker, compressed ones streamed by one."
            ),
        },
    ),
    (
        "--path_match_regex",
        {
            "default": None,
            "help": (
                "Only members whose normalised name matches this regular expression in "
                "full are read; the others are counted as skipped, not quarantined."
            ),
        },
    ),
    (
        "--max_member_bytes",
        {
            "type": int,
            "default": DEFAULT_MAX_MEMBER_BYTES,
            "help": (
                "Members larger than this are quarantined (member_too_large). A member "
                "of a compressed archive is held in memory whole, so this also bounds "
                f"a worker's memory. Default {DEFAULT_MAX_MEMBER_BYTES} (2 GiB)."
            ),
        },
    ),
)


class TarOptions(PipelineOptions):
    """Which tar archives to read, and which of their members."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("tar archives")
        for flag, settings in _FLAGS:
            # Same flag, same meaning elsewhere: one definition serves both.
            if flag not in parser._option_string_actions:
                group.add_argument(flag, **settings)
