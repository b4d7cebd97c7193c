"""Label CSVs (plain or gzipped) read row by row, each row with its location.

A CSV is small next to the images, but every row is a record that must end in
an output or in the quarantine, so rows carry ``file:line N`` for messages.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Iterator, Sequence
from typing import IO

import apache_beam as beam
import attrs
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

__all__ = ["CsvRow", "ReadCsvRows", "missing_columns", "open_text", "read_csv_rows", "read_header"]

_GZIP_MAGIC = b"\x1f\x8b"


@attrs.frozen
class CsvRow:
    """One data row of a CSV file.

    Attributes:
        where: ``<file URI>:line <N>`` (N counts the header as line 1).
        cells: Column name -> text, as `csv.DictReader` yields it.
        problem: Why the row cannot be trusted (bytes that are not UTF-8, more
            or fewer cells than the header), or None for a sound row.
    """

    where: str
    cells: dict[str, str | None]
    problem: str | None = None


def open_text(uri: str) -> IO[str]:
    """Opens a local or remote CSV as text, gunzipping it if its bytes say so."""
    raw = FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED)
    gzipped = raw.read(2) == _GZIP_MAGIC
    raw.seek(0)
    # gzip.GzipFile streams, and is a full io object (Beam's CompressedFile is not).
    handle = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
    # surrogateescape keeps going past bad bytes; the rows that hold them are flagged.
    return io.TextIOWrapper(handle, encoding="utf-8-sig", errors="surrogateescape", newline="")


def read_header(uri: str) -> list[str]:
    """Returns a CSV's column names (empty for an empty file)."""
    with open_text(uri) as text:
        return next(csv.reader(text), [])


def missing_columns(uri: str, required: Sequence[str]) -> list[str]:
    """Returns the required columns that a CSV's header lacks, in order."""
    header = set(read_header(uri))
    return [c for c in required if c not in header]


_SURROGATE = re.compile("[\udc80-\udcff]")
"""What ``surrogateescape`` decoding makes of bytes that are not UTF-8."""


def _has_surrogates(cells: dict[str, str | None]) -> bool:
    text = "".join(value for value in (*cells.values(), *cells.keys()) if value)
    # Most label files are ASCII: one C-speed check per row.
    return not text.isascii() and _SURROGATE.search(text) is not None


class ReadCsvRows(beam.PTransform):
    """Reads CSV files (URIs in, `CsvRow` out), one element per data row."""

    def expand(self, uris: beam.PCollection) -> beam.PCollection:
        """Reads every row of every file."""
        return uris | "ReadRows" >> beam.FlatMap(read_csv_rows)


def read_csv_rows(uri: str) -> Iterator[CsvRow]:
    """Yields every data row of one CSV file, flagged when it cannot be trusted."""
    with open_text(uri) as text:
        reader = csv.DictReader(text)
        for cells in reader:
            # DictReader puts surplus cells under the key None, and fills
            # missing ones with None.
            row = {k: v for k, v in cells.items() if isinstance(k, str)}
            problem = None
            if None in cells or None in row.values():
                problem = f"{sum(1 for v in row.values() if v is not None)} cells"
                problem += f" (+{len(cells[None])} extra)" if None in cells else ""
                problem += f", the header has {len(reader.fieldnames or [])} columns"
            elif _has_surrogates(row):
                problem = "bytes that are not valid UTF-8"
            yield CsvRow(f"{uri}:line {reader.line_num}", row, problem)
