"""The patient leakage report, from a written labels table (DuckDB here)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from datathon_etl.framework.ingest.leakage import LEAKAGE_FILE, LeakageCheck, report_leakage
from datathon_etl.framework.tables import DuckDBTable

CHECK = LeakageCheck("subject_id", "split", {0: "train", 1: "validate", 2: "test"})


def test_every_leaking_patient_is_listed_with_its_split_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "tables.duckdb"
    with duckdb.connect(str(database)) as db:
        db.sql("CREATE TABLE labels (subject_id BIGINT, split BIGINT, path VARCHAR)")
        rows = [(7, 0, "a"), (7, 2, "b"), (3, 0, "c"), (3, 0, "d"), (12, 1, "e")]
        rows += [(12, 0, "f")] + [(100 + n, n % 3, f"g{n}") for n in range(30)]
        db.executemany("INSERT INTO labels VALUES (?, ?, ?)", rows)
    figures = report_leakage(CHECK, DuckDBTable(str(database), "labels"), str(tmp_path), "prog")
    report = json.loads((tmp_path / LEAKAGE_FILE).read_text())
    assert report == {
        "subjects_in_several_splits": 2,
        "subjects": [
            {"subject": "7", "splits": ["test", "train"]},
            {"subject": "12", "splits": ["train", "validate"]},
        ],
    }
    assert figures == {
        "subjects_in_several_splits": 2,
        "leakage_report": f"{tmp_path}/{LEAKAGE_FILE}",
    }
    assert "prog: LEAKAGE: 2 subject(s) in more than one split: 7 (test/train)" in (
        capsys.readouterr().out
    )


def test_a_table_that_cannot_be_read_is_one_line_and_no_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = DuckDBTable(str(tmp_path / "absent.duckdb"), "labels")
    figures = report_leakage(CHECK, table, str(tmp_path), "prog")
    assert figures == {"subjects_in_several_splits": None, "leakage_report": None}
    assert not (tmp_path / LEAKAGE_FILE).exists()
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("prog: no leakage report: ")
    assert "no such DuckDB file" in line
