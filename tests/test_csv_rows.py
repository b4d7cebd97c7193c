"""Label CSVs read row by row: gzip by magic, locations, and untrustworthy rows flagged."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest

from datathon_etl.framework.sources.csv_rows import (
    CsvFileError,
    missing_columns,
    read_csv_rows,
    read_header,
)

GOOD = b"path,edema\na.jpg,1.0\nb.jpg,\n"


@pytest.mark.parametrize("name", ["labels.csv", "labels.csv.gz", "gzipped_without_suffix.csv"])
def test_plain_and_gzipped_files_read_alike(tmp_path: Path, name: str):
    """Gzip is detected from the bytes, not the name; rows carry file:line."""
    path = tmp_path / name
    path.write_bytes(GOOD if name == "labels.csv" else gzip.compress(GOOD))
    rows = list(read_csv_rows(str(path)))
    assert [r.cells for r in rows] == [
        {"path": "a.jpg", "edema": "1.0"},
        {"path": "b.jpg", "edema": ""},
    ]
    assert [r.where for r in rows] == [f"{path}:line 2", f"{path}:line 3"]
    assert all(r.problem is None for r in rows)
    assert read_header(str(path)) == ["path", "edema"]
    assert missing_columns(str(path), ["path", "Edema", "view"]) == ["Edema", "view"]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"c.jpg,1.0,extra", "2 cells (+1 extra), the header has 2 columns"),
        (b"c.jpg", "1 cells, the header has 2 columns"),
        (b"c\xe9.jpg,1.0", "bytes that are not valid UTF-8"),
    ],
)
def test_untrustworthy_rows_are_flagged_not_dropped(tmp_path: Path, line: bytes, problem: str):
    """Ragged and non-UTF-8 rows still come out, flagged, so they can be quarantined."""
    path = tmp_path / "labels.csv"
    path.write_bytes(GOOD + line + b"\n")
    rows = list(read_csv_rows(str(path)))
    assert len(rows) == 3
    assert rows[2].problem == problem
    assert rows[2].where.endswith(":line 4")


def test_a_cell_over_the_field_limit_flags_its_row_and_reading_goes_on(tmp_path: Path):
    """The csv module's limit (131,072 characters) ends a row, not the file."""
    path = tmp_path / "labels.csv"
    path.write_bytes(GOOD + b"c.jpg," + b"9" * 131_073 + b"\nd.jpg,0.0\n")
    rows = list(read_csv_rows(str(path)))
    assert [(r.where.rsplit(":", 1)[1], r.problem is None) for r in rows] == [
        ("line 2", True),
        ("line 3", True),
        ("line 4", False),
        ("line 5", True),
    ]
    assert rows[2].cells == {}
    assert rows[2].problem == "unreadable row: field larger than field limit (131072)"
    assert rows[3].cells == {"path": "d.jpg", "edema": "0.0"}


BAD_FILES: list[tuple[str, Callable[[], bytes], str]] = [
    ("gzip_cut_short", lambda: gzip.compress(GOOD * 100)[:-20], "is cut short"),
    (
        "gzip_bad_crc",
        lambda: gzip.compress(GOOD)[:-8] + b"\0\0\0\0" + gzip.compress(GOOD)[-4:],
        "is corrupt",
    ),
    ("gzip_bad_deflate_data", lambda: gzip.compress(GOOD)[:10] + b"\xff" * 20, "is corrupt"),
    ("repeated_name", lambda: b"path,edema,edema\na.jpg,1.0,0.0\n", "'edema' more than once"),
    ("header_over_the_limit", lambda: b"path," + b"x" * 131_073 + b"\n", "unreadable header"),
]


@pytest.mark.parametrize(
    ("make", "message"), [row[1:] for row in BAD_FILES], ids=[row[0] for row in BAD_FILES]
)
def test_a_file_that_cannot_be_trusted_is_refused_whole(
    tmp_path: Path, make: Callable[[], bytes], message: str
):
    """Damaged compression or an ambiguous header: one CsvFileError naming the file."""
    path = tmp_path / "labels.csv.gz"
    path.write_bytes(make())
    with pytest.raises(CsvFileError) as caught:
        missing_columns(str(path), ["path"])
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)
