"""The demos' shared steps: a command line shown, its failure said, a query's result shown."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from datathon_etl.framework.demo import run_command, show_query


@pytest.mark.parametrize("code", [0, 2])
def test_run_command_shows_the_line_and_says_a_failure(code, capsys):
    seen: list[list[str]] = []

    def main(argv):
        seen.append(list(argv))
        return code

    assert run_command("x ingest", main, ["--a", "b"], "ingestion") == code
    out, err = capsys.readouterr()
    assert seen == [["--a", "b"]]
    assert out == "demo: datathon-etl x ingest --a b\n"
    assert err == ("" if code == 0 else f"demo: ingestion failed with exit code {code}\n")


def test_show_query_prints_the_query_and_its_rows(tmp_path: Path, capsys):
    database = tmp_path / "t.duckdb"
    with duckdb.connect(str(database)) as db:
        db.sql("CREATE TABLE labels AS SELECT 41 + 1 AS answer")
    show_query(database, "\nSELECT answer FROM labels\n")
    out = capsys.readouterr().out
    assert f"one SQL query on the labels table ({database}):\nSELECT answer FROM labels" in out
    assert "42" in out
