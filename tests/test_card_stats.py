"""The data card's SQL statistics, on DuckDB and on the BigQuery emulator, against plain Python.

The same rows go into both engines; each statistic's expected value is
computed here from the rows with Python alone, so a query that one engine
reads differently (or a wrong query) fails.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from datathon_etl.framework.card import stats
from datathon_etl.framework.card.tables import QueryTable, open_table
from datathon_etl.framework.tables import DuckDBTable, query_bigquery

SCHEMA = pa.schema(
    [
        ("patient", pa.int64()),
        ("study", pa.int64()),
        ("view", pa.int64()),
        ("split", pa.int64()),
        ("path", pa.string()),
        ("finding", pa.int64()),
        ("flag", pa.bool_()),
        ("age", pa.float64()),
        ("sex", pa.string()),
    ]
)
_BIGQUERY_TYPES = {
    pa.int64(): "INT64",
    pa.string(): "STRING",
    pa.bool_(): "BOOL",
    pa.float64(): "FLOAT64",
}


def _rows(seed: int = 7, patients: int = 25) -> list[dict[str, Any]]:
    """Random rows; studies are numbered within each patient, as MIMIC-CXR's legacy layout does."""
    rng = random.Random(seed)
    rows = []
    for p in range(patients):
        patient = 1000 + p * 7
        home = rng.choice([0, 0, 0, 1, 2])
        for study in range(1, rng.randint(1, 3) + 1):
            # A few patients leak into a second split.
            split = rng.choice([0, 1, 2]) if rng.random() < 0.15 else home
            for image in range(rng.randint(1, 3)):
                rows.append(
                    {
                        "patient": patient,
                        "study": study,
                        "view": rng.choice([0, 0, 1, 2]),
                        "split": split,
                        "path": f"p{patient}/s{study}/i{image}.jpg",
                        "finding": rng.choice([0, 1, 2, 3, None]),
                        "flag": rng.choice([True, False, None]),
                        "age": rng.choice([None, round(rng.uniform(18, 90), 1)]),
                        "sex": rng.choice(["F", "M", None]),
                    }
                )
    return rows


ROWS = _rows()


@pytest.fixture(params=["duckdb", "bigquery"])
def table(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[QueryTable]:
    """The rows as a labels table in DuckDB, or in the BigQuery emulator."""
    if request.param == "duckdb":
        database = str(tmp_path / "tables.duckdb")
        with duckdb.connect(database) as con:
            arrow = pa.Table.from_pylist(ROWS, schema=SCHEMA)
            con.register("arrow_rows", arrow)
            con.execute("CREATE TABLE labels AS SELECT * FROM arrow_rows")
        with open_table(DuckDBTable(database, "labels")) as opened:
            yield opened
        return
    bigquery = request.getfixturevalue("bigquery")
    name = f"`{bigquery.project}.{bigquery.dataset()}.labels`"
    structs = ",\n".join(
        "STRUCT(" + ", ".join(_literal(row[f.name], f.type) + f" AS {f.name}" for f in SCHEMA) + ")"
        for row in ROWS
    )
    query_bigquery(f"CREATE TABLE {name} AS SELECT * FROM UNNEST([{structs}])")

    def run(sql: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = query_bigquery(sql).to_pylist()
        return rows

    yield QueryTable(name, run)


def _literal(value: Any, type_: pa.DataType) -> str:
    if value is None:
        return f"CAST(NULL AS {_BIGQUERY_TYPES[type_]})"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, float):
        return f"CAST({value!r} AS FLOAT64)"
    return str(value)


def _expected_groups(by: list[str]) -> list[stats.GroupCounts]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in ROWS:
        groups[tuple(row[c] for c in by)].append(row)
    return [
        stats.GroupCounts(
            group=key,
            images=len(rows),
            patients=len({r["patient"] for r in rows}),
            studies=len({(r["patient"], r["study"]) for r in rows}),
        )
        for key, rows in sorted(groups.items())
    ]


@pytest.mark.parametrize("by", [[], ["split"], ["split", "view"]])
def test_group_counts_count_images_patients_and_patient_study_pairs(table, by):
    found = stats.group_counts(table, by, patient="patient", study="study")
    assert found == _expected_groups(by)


def test_group_counts_leave_out_what_is_not_declared(table):
    (found,) = stats.group_counts(table, [])
    assert (found.images, found.patients, found.studies) == (len(ROWS), None, None)


@pytest.mark.parametrize(("column", "by"), [("finding", "split"), ("flag", "split"), ("sex", None)])
def test_value_counts_count_every_value_null_included(table, column, by):
    expected = Counter((row[by] if by else None, row[column]) for row in ROWS)
    found = stats.value_counts(table, column, by=by)
    assert found.counts == dict(expected)
    # Most frequent first.
    assert list(found.counts.values()) == sorted(found.counts.values(), reverse=True)


@pytest.mark.parametrize("column", ["finding", "sex", "path"])
def test_distinct_values_count_null_as_one(table, column):
    assert stats.distinct_values(table, column) == len({row[column] for row in ROWS})


def test_histogram_bins_every_non_null_value(table):
    values = [row["age"] for row in ROWS if row["age"] is not None]
    found = stats.histogram(table, "age", bins=5)
    lo, hi = min(values), max(values)
    width = (hi - lo) / 5
    expected = Counter(min(math.floor((v - lo) / width), 4) for v in values)
    assert found.counts == tuple(expected.get(i, 0) for i in range(5))
    assert found.nulls == len(ROWS) - len(values)
    assert found.edges[0] == pytest.approx(lo)
    assert found.edges[-1] == pytest.approx(hi)


@pytest.mark.parametrize("limit", [1, 20])
def test_leakage_names_the_patients_in_several_splits(table, limit):
    splits: dict[int, set[int]] = defaultdict(set)
    for row in ROWS:
        splits[row["patient"]].add(row["split"])
    leaking = sorted(p for p, s in splits.items() if len(s) > 1)
    assert leaking, "the rows should hold a leak"
    found = stats.leakage(table, patient="patient", split="split", limit=limit)
    assert found.patients == len(leaking)
    assert found.named == tuple((p, tuple(sorted(splits[p]))) for p in leaking[:limit])


def test_leakage_passes_when_each_patient_has_one_split(table):
    found = stats.leakage(table, patient="path", split="split")  # a path is in one split
    assert found == stats.Leakage(0, ())


def test_sample_paths_take_the_first_paths_of_each_group(table):
    groups: dict[tuple[Any, ...], list[str]] = defaultdict(list)
    for row in ROWS:
        groups[(row["split"], row["view"])].append(row["path"])
    found = stats.sample_paths(table, ["split", "view"], per_group=2)
    assert found == {key: sorted(paths)[:2] for key, paths in sorted(groups.items())}
