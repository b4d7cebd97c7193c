"""Label CSVs read row by row: gzip by magic, locations, and untrustworthy rows flagged."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from datathon_etl.framework.sources.csv_rows import missing_columns, read_csv_rows, read_header

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
