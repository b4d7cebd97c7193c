"""`datathon-etl card OUTPUT_DIR`: a run's data card, ``<output_dir>/_card.html``.

``datathon-etl card --leaderboard TABLE`` writes the page of a leaderboard
table instead (`evaluate`'s ``--output_table``).

Also called at the end of every data set's ingestion and every
``images-to-tfrecord`` run (`card_after_run`), unless ``--no_card``. The
card is one self-contained HTML page (no script, nothing fetched when
opened) made from the run's manifest, its quarantine, its labels table
(DuckDB, or BigQuery for a Dataflow run) and its resized images; see
`datathon_etl.framework.card.content` for what it holds.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

import duckdb
from apache_beam.io.filesystem import BeamIOError, CompressionTypes
from apache_beam.io.filesystems import FileSystems
from google.api_core.exceptions import GoogleAPIError

from datathon_etl.framework.card.content import gather
from datathon_etl.framework.card.leaderboard import read_leaderboard
from datathon_etl.framework.card.page import render, render_leaderboard
from datathon_etl.framework.card.tables import open_table
from datathon_etl.framework.cli import version
from datathon_etl.framework.errors import EXIT_OK, EXIT_USAGE
from datathon_etl.framework.run_layout import CARD_NAME, MANIFEST_NAME
from datathon_etl.framework.tables import DuckDBTable, parse_table_spec

__all__ = [
    "CARD_NAME",
    "LEADERBOARD_NAME",
    "CardError",
    "card_after_run",
    "main",
    "write_card",
    "write_leaderboard_page",
]

LEADERBOARD_NAME = "_leaderboard.html"
"""The leaderboard page's file name, beside the leaderboard's DuckDB file."""
PROG = "datathon-etl card"


class CardError(Exception):
    """The card cannot be made: one line saying why and what to do."""


def write_card(output_dir: str, *, images: bool = True, output: str | None = None) -> str:
    """Writes the card of the run in ``output_dir``; returns where.

    Args:
        output_dir: The run's ``--output_dir`` (local or ``gs://``).
        images: Whether to embed thumbnails of the resized images.
        output: Where to write it (default ``<output_dir>/_card.html``).

    Raises:
        CardError: No finished run there, its declaration or labels table
            cannot be read, or an image or the card cannot be read or written.
    """
    output_dir = output_dir.rstrip("/") or "/"
    target = output or f"{output_dir}/{CARD_NAME}"
    try:
        page = render(gather(output_dir, images=images))
    except (ValueError, OSError, duckdb.Error, GoogleAPIError) as e:
        raise CardError(" ".join(str(e).split())) from e
    _write(target, page)
    return target


def card_after_run(output_dir: str, prog: str, *, wanted: bool, images: bool) -> str | None:
    """At the end of a run: writes its card if ``wanted``; returns the line to print.

    Nothing when the run wrote no manifest. A card that cannot be made is one
    line on stderr; the run's exit code stays what its outputs deserve.

    Args:
        output_dir: The run's ``--output_dir``.
        prog: The command, starting the line on stderr.
        wanted: Not ``--no_card``.
        images: Not ``--card_without_images``.
    """
    if not wanted or not FileSystems.exists(f"{output_dir}/{MANIFEST_NAME}"):
        return None
    try:
        written = write_card(output_dir, images=images)
    except CardError as e:
        print(f"{prog}: no data card: {e}", file=sys.stderr)
        return None
    return f"data card {written}"


def write_leaderboard_page(table: str, *, output: str | None = None) -> str:
    """Writes the page of the leaderboard table ``table`` (`evaluate`'s --output_table).

    Returns:
        Where it was written.

    Raises:
        CardError: The table cannot be read, or the page written; a BigQuery
            table without ``output``.
    """
    try:
        spec = parse_table_spec(table)
    except ValueError as e:
        raise CardError(f"--leaderboard: {e}") from e
    if output is not None:
        target = output
    elif isinstance(spec, DuckDBTable):
        target = os.path.join(os.path.dirname(spec.database) or ".", LEADERBOARD_NAME)
    else:
        raise CardError(f"--leaderboard {table}: a BigQuery table needs --output FILE")
    try:
        with open_table(spec) as opened:
            page = render_leaderboard(read_leaderboard(opened, str(spec)))
    except (ValueError, OSError, duckdb.Error, GoogleAPIError) as e:
        raise CardError(" ".join(str(e).split())) from e
    _write(target, page)
    return target


def _write(target: str, page: str) -> None:
    # Written beside, then renamed: a page is complete or absent.
    partial = f"{target}.partial"
    try:
        with FileSystems.create(partial, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            f.write(page.encode("utf-8"))
        if FileSystems.exists(target):
            FileSystems.delete([target])
        FileSystems.rename([partial], [target])
    except (OSError, BeamIOError) as e:
        raise CardError(f"cannot write {target}: {' '.join(str(e).split())}") from e


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # Reported by `main` in one line, as every command's usage errors.
        raise CardError(f"{message}; see --help")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``datathon-etl card``; returns the exit code."""
    parser = _Parser(
        prog=PROG,
        description=(
            "Write the data card of a data set's ingestion (or of an images-to-tfrecord run): "
            "one self-contained HTML page "
            f"(<output_dir>/{CARD_NAME}) with the run's command, versions and inputs, counts "
            "per split and view, label values per split, metadata distributions, the patient "
            "leakage check, the quarantine, thumbnails and the data dictionary."
        ),
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"datathon-etl {version()}")
    parser.add_argument(
        "output_dir", metavar="OUTPUT_DIR", nargs="?", help="the ingestion's --output_dir"
    )
    parser.add_argument(
        "--leaderboard",
        metavar="TABLE",
        default=None,
        help=(
            "instead, the page of the leaderboard table `evaluate` wrote (its --output_table: "
            f"file.duckdb:table or project:dataset.table), to {LEADERBOARD_NAME} beside the "
            "DuckDB file or to --output"
        ),
    )
    parser.add_argument(
        "--without_images",
        action="store_true",
        help="leave the thumbnails out (a card shared beyond those allowed to see the data)",
    )
    parser.add_argument(
        "--output", default=None, help=f"where to write it (OUTPUT_DIR/{CARD_NAME})"
    )
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
        if (args.output_dir is None) == (args.leaderboard is None):
            raise CardError("give OUTPUT_DIR or --leaderboard TABLE (one of them); see --help")
        if args.leaderboard is not None:
            written = write_leaderboard_page(args.leaderboard, output=args.output)
        else:
            written = write_card(
                args.output_dir, images=not args.without_images, output=args.output
            )
    except CardError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{PROG}: {written}")
    return EXIT_OK
