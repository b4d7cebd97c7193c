"""The SQL that checks a submission against the evaluation split and joins it with the labels.

It runs in an in-memory DuckDB over two Arrow tables, ``predictions`` (a
team's rows, already read as plain data and conformed to the predictions
schema) and ``labels`` (the organiser's labels table, every split),
on a connection that can reach no file (`scoring_connection`). A row
*matches* a labels row when every id column (the key and ``path``) is equal.

`checks_sql` counts what makes a submission unscorable: rows repeating an
image, rows matching no labels row (unknown ids), rows of images outside
the evaluation split, and rows whose score is NULL or NaN; and what
it leaves out: images of the split without a row. A row of an image of
another split (whose labels teams may hold) is counted apart from unknown
ids. `scored_sql` gives one
row per matched image: its patient, then per label the score and the
outcome (1 positive, 0 negative, NULL excluded) under the label policy.
`split_counts_sql` counts each label's positives and negatives over the
whole split, which decide whether the label is ranked, the same for every
team.
"""

from __future__ import annotations

import duckdb

from datathon_etl.framework.evaluate.policy import Code, EvaluationSpec, LabelCodes, UncertainPolicy

__all__ = [
    "checks_sql",
    "outcome_sql",
    "patients_sql",
    "scored_sql",
    "scoring_connection",
    "split_counts_sql",
]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: Code) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(int(value))


def outcome_sql(codes: LabelCodes, value: str, policy: UncertainPolicy) -> str:
    """``CASE`` giving 1 (positive), 0 (negative) or NULL for a label value, per the policy."""
    branches = [
        f"WHEN {value} IN ({', '.join(map(_literal, codes.positive))}) THEN 1",
        f"WHEN {value} IN ({', '.join(map(_literal, codes.negative))}) THEN 0",
    ]
    if codes.uncertain and policy is not UncertainPolicy.IGNORE:
        outcome = 1 if policy is UncertainPolicy.POSITIVE else 0
        branches.append(
            f"WHEN {value} IN ({', '.join(map(_literal, codes.uncertain))}) THEN {outcome}"
        )
    return "CASE " + " ".join(branches) + " END"


def _same_ids(spec: EvaluationSpec) -> str:
    return " AND ".join(f"p.{_quote(c)} = l.{_quote(c)}" for c in spec.ids)


def _in_split(spec: EvaluationSpec, code: int | None, table: str = "l") -> str:
    if spec.split is None or code is None:
        return "TRUE"
    return f"{table}.{_quote(spec.split)} = {int(code)}"


def checks_sql(spec: EvaluationSpec, code: int | None) -> str:
    """The counts of the checks, in one row (see the module docstring).

    Columns: rows, repeated_rows, repeated_images, unknown, outside_split,
    missing_scores, missing, images (of the split ``code``).
    """
    path = _quote("path")
    bad_score = " OR ".join(
        f"p.{_quote(c.column)} IS NULL OR isnan(p.{_quote(c.column)})" for c in spec.labels
    )
    return f"""WITH p AS (
  SELECT *, COUNT(*) OVER (PARTITION BY {path}) AS copies FROM predictions
),
matched AS (
  SELECT
    p.copies,
    p.{path},
    l.{path} IS NOT NULL AS known,
    COALESCE({_in_split(spec, code)}, FALSE) AS in_split,
    ({bad_score}) AS bad_score
  FROM p LEFT JOIN labels AS l ON {_same_ids(spec)}
)
SELECT
  COUNT(*) AS rows,
  COUNT(*) FILTER (WHERE copies > 1) AS repeated_rows,
  COUNT(DISTINCT {path}) FILTER (WHERE copies > 1) AS repeated_images,
  COUNT(*) FILTER (WHERE NOT known) AS unknown,
  COUNT(*) FILTER (WHERE known AND NOT in_split) AS outside_split,
  COUNT(*) FILTER (WHERE bad_score) AS missing_scores,
  (SELECT COUNT(*) FROM labels AS l WHERE {_in_split(spec, code)}
    AND NOT EXISTS (SELECT 1 FROM predictions AS p WHERE {_same_ids(spec)})) AS missing,
  (SELECT COUNT(*) FROM labels AS l WHERE {_in_split(spec, code)}) AS images
FROM matched"""


def _patient(spec: EvaluationSpec, table: str) -> str:
    return f"{table}.{_quote(spec.patient)}" if spec.patient else f"{table}.{_quote('path')}"


def scored_sql(spec: EvaluationSpec, code: int | None, policy: UncertainPolicy) -> str:
    """Per matched image: ``patient``, then ``score_<i>`` and ``outcome_<i>`` per label."""
    columns = ",\n  ".join(
        f"p.{_quote(c.column)} AS score_{i}, "
        f"{outcome_sql(c, f'l.{_quote(c.column)}', policy)} AS outcome_{i}"
        for i, c in enumerate(spec.labels)
    )
    return f"""SELECT
  CAST({_patient(spec, "l")} AS VARCHAR) AS patient,
  {columns}
FROM predictions AS p JOIN labels AS l ON {_same_ids(spec)}
WHERE {_in_split(spec, code)}
ORDER BY l.{_quote("path")}"""


def split_counts_sql(spec: EvaluationSpec, code: int | None, policy: UncertainPolicy) -> str:
    """One row: ``positives_<i>``, ``negatives_<i>`` per label, over the split."""
    counts = ",\n  ".join(
        f"COUNT(*) FILTER (WHERE {outcome_sql(c, f'l.{_quote(c.column)}', policy)} = 1) "
        f"AS positives_{i}, "
        f"COUNT(*) FILTER (WHERE {outcome_sql(c, f'l.{_quote(c.column)}', policy)} = 0) "
        f"AS negatives_{i}"
        for i, c in enumerate(spec.labels)
    )
    return f"SELECT\n  {counts}\nFROM labels AS l WHERE {_in_split(spec, code)}"


def patients_sql(spec: EvaluationSpec, code: int | None) -> str:
    """The split's patients, sorted: what the bootstrap draws from."""
    return (
        f"SELECT DISTINCT CAST({_patient(spec, 'l')} AS VARCHAR) AS patient "
        f"FROM labels AS l WHERE {_in_split(spec, code)} ORDER BY 1"
    )


def scoring_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that can read no file, load no extension, change no setting."""
    return duckdb.connect(
        ":memory:",
        config={
            "enable_external_access": False,
            "autoload_known_extensions": False,
            "autoinstall_known_extensions": False,
            "lock_configuration": True,
        },
    )
