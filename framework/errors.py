"""How a command fails: `UsageError` and the exit codes every command returns.

`EXIT_OK`; `EXIT_FAILED` when a run finished but refused more inputs than
``--max_bad_fraction`` allows or its counts do not add up (see
`datathon_etl.framework.command`); `EXIT_USAGE` for bad flags and inputs,
found before anything runs, and for output folders that cannot be written
(see `datathon_etl.framework.output_folders`).
"""

from __future__ import annotations

from typing import Final

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "UsageError"]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2


class UsageError(Exception):
    """A bad flag or input, found before the pipeline is built: one line for stderr."""
