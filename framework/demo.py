"""What every ``make demo*`` does between writing its sample and its last line.

Each demo runs generated commands in-process, printing each command line
first, and shows one SQL query on the DuckDB tables it wrote.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import duckdb

__all__ = ["run_command", "show_query"]


def run_command(
    name: str, main: Callable[[Sequence[str] | None], int], argv: list[str], what: str
) -> int:
    """Prints ``datathon-etl <name> <argv>``, runs it; on failure says so on stderr.

    Args:
        name: The command as typed after ``datathon-etl`` (``mimic_cxr ingest``).
        main: Its ``main(argv)``.
        argv: Its arguments.
        what: The step, for the failure line (``ingestion``).

    Returns:
        The command's exit code.
    """
    print(f"demo: datathon-etl {name} " + " ".join(argv), flush=True)
    code = main(argv)
    if code != 0:
        print(f"demo: {what} failed with exit code {code}", file=sys.stderr)
    return code


def show_query(database: Path, query: str, table: str = "the labels table") -> None:
    """Prints ``query`` and its result on the DuckDB file ``database``."""
    print(f"\ndemo: one SQL query on {table} ({database}):{query}")
    with duckdb.connect(str(database), read_only=True) as db:
        db.sql(query).show()
