"""The card's statistics, each one SQL query over the labels table.

The queries use only what DuckDB and BigQuery's GoogleSQL both run:
``COUNT(DISTINCT ...)``, ``CONCAT``, ``CAST(... AS STRING)``, ``GROUP BY``
on columns, ``ROW_NUMBER() OVER (...)`` and subqueries. Column names come
from the data set's declaration (plain identifiers), never from data.
Values come back as the table stores them (codes as integers); the page
names them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from datathon_etl.framework.card.tables import QueryTable

__all__ = [
    "GroupCounts",
    "Histogram",
    "Leakage",
    "ValueCounts",
    "distinct_values",
    "group_counts",
    "histogram",
    "leakage",
    "sample_paths",
    "value_counts",
]


@attrs.frozen
class GroupCounts:
    """Images, patients and studies in one group (a split, a split and view, or all).

    Attributes:
        group: The group's values, in the order asked (empty for all rows).
        images: Rows (one per image).
        patients: Distinct patients, or None when no patient column is declared.
        studies: Distinct (patient, study) pairs, or None when either is not declared.
    """

    group: tuple[Any, ...]
    images: int
    patients: int | None
    studies: int | None


def group_counts(
    table: QueryTable,
    by: Sequence[str],
    *,
    patient: str | None = None,
    study: str | None = None,
) -> list[GroupCounts]:
    """Counts images, patients and studies per group of ``by`` columns, ordered by group.

    A study is counted as a (patient, study) pair: some data sets number
    studies within each patient.
    """
    columns = [f"{c} AS g{i}" for i, c in enumerate(by)]
    measures = ["COUNT(*) AS images"]
    if patient:
        measures.append(f"COUNT(DISTINCT {patient}) AS patients")
        if study:
            pair = f"CONCAT(CAST({patient} AS STRING), '/', CAST({study} AS STRING))"
            measures.append(f"COUNT(DISTINCT {pair}) AS studies")
    sql = f"SELECT {', '.join([*columns, *measures])} FROM {table.name}"
    if by:
        sql += f" GROUP BY {', '.join(by)} ORDER BY {', '.join(by)}"
    return [
        GroupCounts(
            group=tuple(row[f"g{i}"] for i in range(len(by))),
            images=int(row["images"]),
            patients=row.get("patients"),
            studies=row.get("studies"),
        )
        for row in table.query(sql)
        if row["images"]  # an empty table still returns one row without GROUP BY
    ]


@attrs.frozen
class ValueCounts:
    """How often each value of a column occurs, per group.

    Attributes:
        column: The column.
        counts: (group value, column value) -> rows, the most frequent first;
            the group value is None without a group column; NULL is None.
    """

    column: str
    counts: dict[tuple[Any, Any], int]


def value_counts(table: QueryTable, column: str, *, by: str | None = None) -> ValueCounts:
    """Counts each value of ``column``, per value of ``by`` if given (the split)."""
    group = by or "CAST(NULL AS STRING)"
    keys = f"{by}, {column}" if by else column
    rows = table.query(
        f"SELECT {group} AS grp, {column} AS val, COUNT(*) AS n FROM {table.name} "
        f"GROUP BY {keys} ORDER BY n DESC, {keys}"
    )
    return ValueCounts(column, {(row["grp"], row["val"]): int(row["n"]) for row in rows})


def distinct_values(table: QueryTable, column: str) -> int:
    """How many distinct values ``column`` holds (NULL counts as one)."""
    (row,) = table.query(
        f"SELECT COUNT(*) AS n FROM (SELECT {column} FROM {table.name} GROUP BY {column}) AS v"
    )
    return int(row["n"])


@attrs.frozen
class Histogram:
    """A numeric column's values in equal-width bins.

    Attributes:
        column: The column.
        edges: ``bins + 1`` bin edges, from the minimum to the maximum.
        counts: Rows per bin (the last bin holds the maximum).
        nulls: Rows where the column is NULL.
    """

    column: str
    edges: tuple[float, ...]
    counts: tuple[int, ...]
    nulls: int


def histogram(table: QueryTable, column: str, *, bins: int = 10) -> Histogram:
    """Bins a numeric column's values into ``bins`` equal-width bins."""
    (bounds,) = table.query(
        f"SELECT MIN({column}) AS lo, MAX({column}) AS hi, "
        f"COUNT(*) - COUNT({column}) AS nulls FROM {table.name}"
    )
    nulls = int(bounds["nulls"])
    if bounds["lo"] is None:
        return Histogram(column, (), (), nulls)
    lo, hi = float(bounds["lo"]), float(bounds["hi"])
    width = (hi - lo) / bins or 1.0
    index = f"LEAST(CAST(FLOOR(({column} - {lo!r}) / {width!r}) AS INT64), {bins - 1})"
    rows = table.query(
        f"SELECT {index} AS bin, COUNT(*) AS n FROM {table.name} "
        f"WHERE {column} IS NOT NULL GROUP BY bin ORDER BY bin"
    )
    per_bin = {int(row["bin"]): int(row["n"]) for row in rows}
    edges = tuple(lo + width * i for i in range(bins + 1))
    return Histogram(column, edges, tuple(per_bin.get(i, 0) for i in range(bins)), nulls)


@attrs.frozen
class Leakage:
    """Patients found in more than one split.

    Attributes:
        patients: How many.
        named: The first of them (by id), each with its splits in order.
    """

    patients: int
    named: tuple[tuple[Any, tuple[Any, ...]], ...]


def leakage(table: QueryTable, *, patient: str, split: str, limit: int | None = 20) -> Leakage:
    """Finds the patients with images in more than one split; names the first ``limit`` (all)."""
    leaking = (
        f"SELECT {patient} AS p FROM {table.name} GROUP BY {patient} "
        f"HAVING COUNT(DISTINCT {split}) > 1"
    )
    (total,) = table.query(f"SELECT COUNT(*) AS n FROM ({leaking}) AS leaks")
    first = f" ORDER BY p LIMIT {int(limit)}" if limit is not None else ""
    rows = table.query(
        f"SELECT DISTINCT {patient} AS p, {split} AS s FROM {table.name} "
        f"WHERE {patient} IN (SELECT p FROM ({leaking}) AS leaks{first}) "
        "ORDER BY p, s"
    )
    named: dict[Any, list[Any]] = {}
    for row in rows:
        named.setdefault(row["p"], []).append(row["s"])
    return Leakage(int(total["n"]), tuple((p, tuple(s)) for p, s in named.items()))


def sample_paths(
    table: QueryTable, by: Sequence[str], *, per_group: int
) -> dict[tuple[Any, ...], list[str]]:
    """The first ``per_group`` image paths (by path) of each group of ``by`` columns."""
    keys = ", ".join(by)
    columns = ", ".join(f"{c} AS g{i}" for i, c in enumerate(by))
    partition = f"PARTITION BY {keys} " if by else ""
    rows = table.query(
        f"SELECT {columns + ', ' if by else ''}path FROM ("
        f"SELECT {keys + ', ' if by else ''}path, "
        f"ROW_NUMBER() OVER ({partition}ORDER BY path) AS n FROM {table.name}) AS ranked "
        f"WHERE n <= {int(per_group)} ORDER BY {keys + ', ' if by else ''}path"
    )
    found: dict[tuple[Any, ...], list[str]] = {}
    for row in rows:
        found.setdefault(tuple(row[f"g{i}"] for i in range(len(by))), []).append(row["path"])
    return found
