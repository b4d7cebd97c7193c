"""Label CSVs (plain or gzipped) read row by row, each row with its location.

A CSV is small next to the images, but every row is a record that must end in
an output or in the quarantine, so rows carry ``file:line N`` for messages.

What is wrong with a whole file is found before a run starts
(`missing_columns`): a header that names a column twice (which cell would
count?), and a gzipped file that is cut short or fails its CRC (checked at the
end of the stream, so the whole file is read). What is wrong with one row
(a cell over `csv.field_size_limit`, too many or too few cells, bytes that are
not UTF-8) flags that row only.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import re
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import IO

import apache_beam as beam
import attrs
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from datathon_etl.framework.sources.regular_files import check_regular_file

__all__ = [
    "CsvFileError",
    "CsvRow",
    "ReadCsvRows",
    "missing_columns",
    "open_text",
    "read_csv_rows",
    "read_header",
]

_GZIP_MAGIC = b"\x1f\x8b"
_DRAIN = 1 << 20


class CsvFileError(OSError):
    """A whole CSV cannot be trusted: corrupt compression or a repeated column name.

    An `OSError`, like gzip's own `BadGzipFile`: a file that cannot be read.
    """


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


def open_text(uri: str) -> io.TextIOWrapper:
    """Opens a local or remote CSV as text, gunzipping it if its bytes say so.

    Raises:
        NotARegularFileError: A FIFO or a device (never opened).
    """
    check_regular_file(uri)
    raw = FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED)
    gzipped = raw.read(2) == _GZIP_MAGIC
    raw.seek(0)
    # gzip.GzipFile streams, and is a full io object (Beam's CompressedFile is not).
    handle = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
    # surrogateescape keeps going past bad bytes; the rows that hold them are flagged.
    return io.TextIOWrapper(handle, encoding="utf-8-sig", errors="surrogateescape", newline="")


@contextlib.contextmanager
def _corruption_as_csv_file_error(uri: str) -> Iterator[None]:
    """Turns a damaged gzip stream's errors into one `CsvFileError` naming the file."""
    try:
        yield
    except EOFError as e:
        raise CsvFileError(f"{uri} is cut short ({e}); download it again") from e
    except (gzip.BadGzipFile, zlib.error) as e:
        raise CsvFileError(f"{uri} is corrupt ({e}); download it again") from e


def _header(uri: str, text: IO[str]) -> list[str]:
    """Reads the header row; refuses one that is unreadable or repeats a name."""
    try:
        header = next(csv.reader(text), [])
    except csv.Error as e:
        raise CsvFileError(f"{uri}: unreadable header ({e}); fix the file's first line") from e
    repeated = sorted(name for name, count in Counter(header).items() if count > 1)
    if repeated:
        names = ", ".join(repr(name) for name in repeated)
        raise CsvFileError(
            f"{uri}: the header names {names} more than once; rename or remove the extra column(s)"
        )
    return list(header)


def read_header(uri: str) -> list[str]:
    """Returns a CSV's column names (empty for an empty file).

    Raises:
        CsvFileError: The header repeats a name, or the file's compression is damaged.
    """
    with _corruption_as_csv_file_error(uri), open_text(uri) as text:
        return _header(uri, text)


def missing_columns(uri: str, required: Sequence[str]) -> list[str]:
    """Returns the required columns that a CSV's header lacks, in order.

    A gzipped file is read to its end first: its CRC and length are checked
    there, and a damaged one must stop the run before it starts.

    Raises:
        CsvFileError: The header repeats a name, or the file's compression is damaged.
    """
    with _corruption_as_csv_file_error(uri), open_text(uri) as text:
        header = set(_header(uri, text))
        if isinstance(text.buffer, gzip.GzipFile):
            while text.buffer.read(_DRAIN):
                pass
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
    """Yields every data row of one CSV file, flagged when it cannot be trusted.

    A row with a cell over `csv.field_size_limit` characters comes without
    cells; reading goes on at the next line (a huge quoted cell that spans
    lines leaves its later lines to be read, and flagged, as rows).
    """
    with _corruption_as_csv_file_error(uri), open_text(uri) as text:
        reader = csv.DictReader(text)
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as e:  # a cell over the limit (quoting errors need strict mode)
                # The DictReader's own count lags behind a failed row.
                where = f"{uri}:line {reader.reader.line_num}"
                yield CsvRow(where, {}, f"unreadable row: {e}")
                continue
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
