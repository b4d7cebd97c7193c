"""Per-label evaluation of a predictions table against a labels table, in SQL.

``datathon-etl <dataset> evaluate`` joins the predictions with the labels on
``path`` where the tables are (DuckDB, or BigQuery), and gives per label:
AUROC, prevalence and counts; it prints them and writes them as a table, a
leaderboard organisers can run for each team's predictions.

What counts as positive (the label policy, generated per dataset from its
declaration; see `LabelCodes`): for a coded label, the code named
``positive`` is positive, the code named ``uncertain`` is uncertain, every
other code (``negative``, ``not_mentioned``) is negative, as the predictions
table's column descriptions say; for a ``bool`` label, true is positive.
For MIMIC-CXR: 3 positive; 1 and 0 negative; 2 uncertain. Uncertain labels
follow ``--uncertain``: ``ignore`` (default: left out of that label's
AUROC, prevalence, positives and negatives, and counted as ``excluded``),
``negative`` or ``positive``. A NULL label is always excluded, as is a NULL
score.

AUROC is computed with the rank (Mann-Whitney) formula, since neither DuckDB
nor BigQuery has it built in::

    AUROC = (R - P (P + 1) / 2) / (P N)

where P and N are the label's positive and negative images and R is the sum
of the positives' ranks among all P + N scores, ascending, ties given their
mean rank. That is the probability that a random positive scores above a
random negative, a tie counting one half. A tie group's mean rank is
``(first + last) / 2``, with ``first = RANK() OVER (ORDER BY score)`` and
``last = n + 1 - RANK() OVER (ORDER BY score DESC)``: window functions
partitioned by the label only (BigQuery cannot partition or group by a
FLOAT64). A label without positives or without negatives has no AUROC
(NULL). Scores are the logits as stored; any monotone transform (a
sigmoid) gives the same AUROC.

The same SQL text runs in both backends: identifiers are quoted with
backticks (DuckDB accepts them too), integer counts come from ``COUNT``
(``BIGINT``/``INT64`` in both) and every division is written so that both
return a float. Only the table references differ.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

import attrs
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions

from datathon_etl.framework.flags import parse_flags
from datathon_etl.framework.inference.options import (
    EvaluationOptions,
    PredictionsOptions,
    UncertainPolicy,
)
from datathon_etl.framework.manifest import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from datathon_etl.framework.preflight import check_cloud_resources
from datathon_etl.framework.tables import (
    DESCRIPTION_KEY,
    PATH_COLUMN,
    BigQueryTable,
    DuckDBTable,
    TableSpec,
    parse_table_spec,
    query_bigquery,
    replace_duckdb_table,
)
from datathon_etl.framework.tables.options import LabelsSourceOptions, TableOutputOptions

__all__ = [
    "EVALUATION_SCHEMA",
    "EvaluationJob",
    "EvaluationSpec",
    "LabelCodes",
    "evaluate",
    "evaluation_sql",
    "format_leaderboard",
    "run_evaluation",
    "write_evaluation",
]

Code = int | bool

_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _field(name: str, type_: pa.DataType, text: str, nullable: bool = False) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={DESCRIPTION_KEY: text.encode()})


EVALUATION_SCHEMA = pa.schema(
    [
        _field("label", pa.string(), "The label (a predictions column), in model output order."),
        _field(
            "auroc",
            pa.float64(),
            "Area under the ROC curve of the label's logits over its positive and "
            "negative images (ties count one half); NULL without both.",
            nullable=True,
        ),
        _field(
            "prevalence",
            pa.float64(),
            "positives / (positives + negatives); NULL without either.",
            nullable=True,
        ),
        _field("positives", pa.int64(), "Images whose label counts as positive."),
        _field("negatives", pa.int64(), "Images whose label counts as negative."),
        _field(
            "excluded",
            pa.int64(),
            "Images left out: uncertain under --uncertain ignore, or a NULL label or score.",
        ),
        _field("images", pa.int64(), "Predicted images with a labels row (joined on path)."),
    ],
    metadata={"table": "evaluation"},
)
"""The evaluation table: one row per label."""


def _codes(values: Sequence[Code]) -> tuple[Code, ...]:
    return tuple(values)


@attrs.frozen
class LabelCodes:
    """Which stored values of one label column are positive, negative or uncertain.

    Values in none of the three (and NULL) are excluded.

    Attributes:
        column: The label's column, in both tables.
        positive: Values that count as positive.
        negative: Values that count as negative.
        uncertain: Values that count as ``--uncertain`` says.
    """

    column: str
    positive: tuple[Code, ...] = attrs.field(converter=_codes)
    negative: tuple[Code, ...] = attrs.field(converter=_codes)
    uncertain: tuple[Code, ...] = attrs.field(default=(), converter=_codes)

    def outcome(self, value: Code | None, policy: UncertainPolicy) -> int | None:
        """1 (positive), 0 (negative) or None (excluded), as the SQL decides."""
        if value is None:
            return None
        if value in self.positive:
            return 1
        if value in self.negative:
            return 0
        if value in self.uncertain and policy is not UncertainPolicy.IGNORE:
            return 1 if policy is UncertainPolicy.POSITIVE else 0
        return None


def _label_tuple(labels: Iterable[LabelCodes]) -> tuple[LabelCodes, ...]:
    return tuple(labels)


@attrs.frozen
class EvaluationSpec:
    """A dataset's labels for evaluation (generated into ``generated/<dataset>/evaluate.py``).

    Attributes:
        dataset: The dataset's name.
        labels: One entry per evaluated label, in model output order (any
            sequence; kept as a tuple).
    """

    dataset: str
    labels: tuple[LabelCodes, ...] = attrs.field(converter=_label_tuple)


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _name_literal(name: str) -> str:
    # Label names are identifiers, so one literal means the same in both backends.
    if not _IDENTIFIER_RE.match(name):
        raise ValueError(f"label {name!r}: not a plain identifier")
    return f"'{name}'"


def _duckdb_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _literal(value: Code) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(int(value))


def _outcome_sql(codes: LabelCodes, value: str, policy: UncertainPolicy) -> str:
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


def evaluation_sql(
    spec: EvaluationSpec,
    predictions: str,
    labels: str,
    policy: UncertainPolicy = UncertainPolicy.IGNORE,
) -> str:
    """The evaluation query: one row per label (`EVALUATION_SCHEMA`), in label order.

    Args:
        spec: The labels and their codes.
        predictions: The predictions table, as the backend names it (e.g.
            ```db0`.`mimic_cxr_predictions``` or ```proj.ds.preds```).
        labels: The labels table, likewise.
        policy: What uncertain labels count as.

    Returns:
        One SQL query, valid in DuckDB and in BigQuery (see the module docstring).

    Raises:
        ValueError: The spec has no labels.
    """
    if not spec.labels:
        raise ValueError(f"{spec.dataset}: no label can be evaluated")
    path = _quote(PATH_COLUMN)
    joined = ",\n    ".join(
        f"p.{_quote(c.column)} AS score_{i}, l.{_quote(c.column)} AS label_{i}"
        for i, c in enumerate(spec.labels)
    )
    long = "\n  UNION ALL\n  ".join(
        f"SELECT {i} AS label_index, score_{i} AS score, "
        f"{_outcome_sql(c, f'label_{i}', policy)} AS outcome FROM joined"
        for i, c in enumerate(spec.labels)
    )
    names = "\n  UNION ALL\n  ".join(
        f"SELECT {i} AS label_index, {_name_literal(c.column)} AS label"
        for i, c in enumerate(spec.labels)
    )
    return f"""WITH joined AS (
  SELECT
    {joined}
  FROM {predictions} AS p
  JOIN {labels} AS l ON p.{path} = l.{path}
),
long AS (
  {long}
),
kept AS (
  SELECT label_index, score, outcome FROM long
  WHERE outcome IS NOT NULL AND score IS NOT NULL
),
ranked AS (
  SELECT
    label_index,
    outcome,
    (RANK() OVER (PARTITION BY label_index ORDER BY score)
      + COUNT(*) OVER (PARTITION BY label_index) + 1
      - RANK() OVER (PARTITION BY label_index ORDER BY score DESC)) / 2 AS mean_rank
  FROM kept
),
per_label AS (
  SELECT
    label_index,
    COUNT(CASE WHEN outcome = 1 THEN 1 END) AS positives,
    COUNT(CASE WHEN outcome = 0 THEN 1 END) AS negatives,
    SUM(CASE WHEN outcome = 1 THEN mean_rank ELSE 0 END) AS positive_rank_sum
  FROM ranked
  GROUP BY label_index
),
images AS (
  SELECT label_index, COUNT(*) AS images FROM long GROUP BY label_index
),
names AS (
  {names}
)
SELECT
  n.label AS label,
  CASE WHEN s.positives > 0 AND s.negatives > 0 THEN
    (s.positive_rank_sum - s.positives * (s.positives + 1) / 2) / (s.positives * s.negatives)
  END AS auroc,
  CASE WHEN s.positives + s.negatives > 0 THEN
    s.positives / (s.positives + s.negatives)
  END AS prevalence,
  COALESCE(s.positives, 0) AS positives,
  COALESCE(s.negatives, 0) AS negatives,
  COALESCE(i.images, 0) - COALESCE(s.positives, 0) - COALESCE(s.negatives, 0) AS excluded,
  COALESCE(i.images, 0) AS images
FROM names AS n
LEFT JOIN per_label AS s ON s.label_index = n.label_index
LEFT JOIN images AS i ON i.label_index = n.label_index
ORDER BY n.label_index
"""


def _coverage_sql(predictions: str, labels: str) -> str:
    path = _quote(PATH_COLUMN)
    return (
        f"SELECT (SELECT COUNT(*) FROM {predictions}) AS predictions, "
        f"(SELECT COUNT(*) FROM {labels}) AS labels, "
        f"(SELECT COUNT(*) FROM {predictions} AS p JOIN {labels} AS l "
        f"ON p.{path} = l.{path}) AS matched"
    )


@attrs.frozen
class EvaluationJob:
    """Where evaluate reads and writes.

    Attributes:
        predictions: The predictions table.
        labels: The labels table (same backend).
        output: The evaluation table to replace (same backend), or None.
        policy: What uncertain labels count as.
        project: BigQuery: the project that runs the queries.
    """

    predictions: TableSpec
    labels: TableSpec
    output: TableSpec | None = None
    policy: UncertainPolicy = UncertainPolicy.IGNORE
    project: str | None = None


@attrs.frozen
class EvaluationResult:
    """What `evaluate` found.

    Attributes:
        table: One row per label (`EVALUATION_SCHEMA`).
        predictions: Rows in the predictions table.
        labels: Rows in the labels table.
        matched: Predictions with a labels row.
    """

    table: pa.Table
    predictions: int
    labels: int
    matched: int


def _conform(table: pa.Table) -> pa.Table:
    # Column types as declared (e.g. DuckDB's DECIMAL sums become DOUBLE).
    columns = [table.column(field.name).cast(field.type) for field in EVALUATION_SCHEMA]
    return pa.Table.from_arrays(columns, schema=EVALUATION_SCHEMA)


def _check_same_backend(job: EvaluationJob) -> None:
    tables = [job.predictions, job.labels, *([job.output] if job.output else [])]
    kinds = {type(t) for t in tables}
    if len(kinds) > 1:
        raise ValueError(
            "the predictions, labels and evaluation tables must all be in DuckDB or all in "
            "BigQuery: the evaluation runs where the tables are"
        )


def _evaluate_duckdb(
    spec: EvaluationSpec, predictions: DuckDBTable, labels: DuckDBTable, policy: UncertainPolicy
) -> EvaluationResult:
    import duckdb

    aliases: dict[str, str] = {}
    with duckdb.connect(":memory:") as con:
        for database in sorted({predictions.database, labels.database}):
            if not os.path.isfile(database):
                raise ValueError(f"{database}: no such DuckDB file")
            alias = f"db{len(aliases)}"
            con.execute(f"ATTACH {_duckdb_string(database)} AS {alias} (READ_ONLY)")
            aliases[database] = alias

        def name(table: DuckDBTable) -> str:
            return f"{aliases[table.database]}.{_quote(table.table)}"

        sql = evaluation_sql(spec, name(predictions), name(labels), policy)
        table = con.sql(sql).to_arrow_table()
        ((*counts,),) = con.execute(_coverage_sql(name(predictions), name(labels))).fetchall()
    return EvaluationResult(_conform(table), *(int(c) for c in counts))


def _evaluate_bigquery(
    spec: EvaluationSpec, predictions: BigQueryTable, labels: BigQueryTable, job: EvaluationJob
) -> EvaluationResult:
    sql = evaluation_sql(spec, predictions.sql_name, labels.sql_name, job.policy)
    table = query_bigquery(sql, project=job.project)
    coverage = _coverage_sql(predictions.sql_name, labels.sql_name)
    (counts,) = query_bigquery(coverage, project=job.project).to_pylist()
    return EvaluationResult(
        _conform(table), int(counts["predictions"]), int(counts["labels"]), int(counts["matched"])
    )


def evaluate(spec: EvaluationSpec, job: EvaluationJob) -> EvaluationResult:
    """Runs the evaluation query where the tables are; writes nothing.

    Raises:
        ValueError: The tables are in different backends, or a DuckDB file
            is missing.
        duckdb.Error: A table or column is missing (DuckDB).
    """
    _check_same_backend(job)
    predictions, labels = job.predictions, job.labels
    if isinstance(predictions, BigQueryTable) and isinstance(labels, BigQueryTable):
        return _evaluate_bigquery(spec, predictions, labels, job)
    if isinstance(predictions, DuckDBTable) and isinstance(labels, DuckDBTable):
        return _evaluate_duckdb(spec, predictions, labels, job.policy)
    raise ValueError(f"unsupported tables {predictions} and {labels}")


def write_evaluation(result: EvaluationResult, job: EvaluationJob, spec: EvaluationSpec) -> int:
    """Replaces ``job.output`` with the result; returns the rows written.

    DuckDB: through the DuckDB sink's single transaction, with column
    comments. BigQuery: ``CREATE OR REPLACE TABLE ... AS`` the same query.

    Raises:
        ValueError: The tables are in different backends.
    """
    _check_same_backend(job)
    output, predictions, labels = job.output, job.predictions, job.labels
    if output is None:
        return 0
    if isinstance(output, DuckDBTable):
        with tempfile.TemporaryDirectory(prefix="datathon-etl-evaluation-") as folder:
            staged = os.path.join(folder, "evaluation.parquet")
            pq.write_table(result.table, staged)
            return replace_duckdb_table(output, EVALUATION_SCHEMA, [staged])
    if isinstance(predictions, BigQueryTable) and isinstance(labels, BigQueryTable):
        sql = evaluation_sql(spec, predictions.sql_name, labels.sql_name, job.policy)
        query_bigquery(f"CREATE OR REPLACE TABLE {output.sql_name} AS\n{sql}", project=job.project)
        return int(result.table.num_rows)
    raise ValueError(f"unsupported tables {predictions}, {labels} and {output}")


def _number(value: Any, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def format_leaderboard(result: EvaluationResult) -> str:
    """The result as an aligned text table, then the mean AUROC."""
    rows = result.table.to_pylist()
    header = ("label", "AUROC", "prevalence", "positives", "negatives", "excluded")
    lines = [header] + [
        (
            row["label"],
            _number(row["auroc"], 3),
            _number(row["prevalence"], 3),
            str(row["positives"]),
            str(row["negatives"]),
            str(row["excluded"]),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    ]
    scored = [row["auroc"] for row in rows if row["auroc"] is not None]
    if scored:
        mean = sum(scored) / len(scored)
        text.append(f"mean AUROC {mean:.3f} over {len(scored)} of {len(rows)} labels")
    else:
        text.append(f"mean AUROC n/a: no label has both positives and negatives ({len(rows)})")
    return "\n".join(text)


def _parse_spec(flag: str, text: str, default_database: str | None) -> TableSpec:
    try:
        return parse_table_spec(text, default_database=default_database)
    except ValueError as e:
        raise UsageError(f"{flag}: {e}") from e


def _beside(table: str, anchor: TableSpec, flag: str, default_database: str | None) -> TableSpec:
    """Parses ``table``; a bare name lives beside ``anchor`` (same file or dataset)."""
    if isinstance(anchor, BigQueryTable) and "." not in table and ":" not in table:
        return _parse_spec(flag, f"{anchor.project}:{anchor.dataset}.{table}", None)
    return _parse_spec(flag, table, default_database)


def job_from_options(spec: EvaluationSpec, options: PipelineOptions) -> EvaluationJob:
    """Validates evaluate's flags and checks the tables' files or cloud resources; runs nothing.

    Raises:
        UsageError: A missing, contradictory or unusable flag, a missing
            DuckDB file, or an unusable cloud resource (see
            `check_cloud_resources`).
    """
    predictions_flag = options.view_as(PredictionsOptions).predictions_table
    if not predictions_flag:
        raise UsageError("--predictions_table is required")
    labels_flags = options.view_as(LabelsSourceOptions)
    if labels_flags.labels_query:
        raise UsageError("evaluate reads a whole --labels_table; --labels_query is not used")
    predictions = _parse_spec("--predictions_table", predictions_flag, None)
    anchor_db = predictions.database if isinstance(predictions, DuckDBTable) else None
    labels = _beside(
        labels_flags.labels_table or f"{spec.dataset}_labels",
        predictions,
        "--labels_table",
        labels_flags.labels_db or anchor_db,
    )
    output = _beside(
        options.view_as(TableOutputOptions).output_table or f"{spec.dataset}_evaluation",
        predictions,
        "--output_table",
        anchor_db,
    )
    job = EvaluationJob(
        predictions=predictions,
        labels=labels,
        output=output,
        policy=UncertainPolicy(options.view_as(EvaluationOptions).uncertain),
        project=options.view_as(GoogleCloudOptions).project,
    )
    try:
        _check_same_backend(job)
    except ValueError as e:
        raise UsageError(str(e)) from e
    check_cloud_resources(
        options,
        tables={
            "--predictions_table": predictions,
            "--labels_table": labels,
            "--output_table": output,
        },
    )
    for flag, table in (("--predictions_table", predictions), ("--labels_table", labels)):
        if isinstance(table, DuckDBTable) and not os.path.isfile(table.database):
            raise UsageError(f"{flag} {table}: no such DuckDB file")
        if not _table_exists(table, job.project):
            raise UsageError(f"{flag} {table}: no such table; check the name")
    return job


def _table_exists(table: TableSpec, project: str | None) -> bool:
    """Whether ``table`` exists (a DuckDB table or view, or a BigQuery table)."""
    if isinstance(table, DuckDBTable):
        import duckdb

        with duckdb.connect(table.database, read_only=True) as con:
            found = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE lower(table_name) = lower(?)",
                [table.table],
            ).fetchone()
        return bool(found and found[0])
    from google.api_core import exceptions
    from google.cloud import bigquery

    client = bigquery.Client(project=project or table.project)
    try:
        client.get_table(f"{table.project}.{table.dataset}.{table.table}")
    except exceptions.NotFound:
        return False
    finally:
        client.close()  # type: ignore[no-untyped-call]
    return True


def run_evaluation(
    spec: EvaluationSpec, argv: Sequence[str] | None = None, *, out: TextIO | None = None
) -> int:
    """Parses flags, evaluates, prints the leaderboard, writes it; returns the exit code."""
    out = out or sys.stdout
    prog = f"datathon-etl {spec.dataset} evaluate"
    try:
        options = parse_flags(
            prog,
            f"Score a {spec.dataset} predictions table against the labels table in SQL "
            "(DuckDB or BigQuery, where the tables are): per-label AUROC, prevalence and "
            "counts, printed and written as a table (replaced on a re-run). Defaults: "
            f"--labels_table {spec.dataset}_labels and --output_table "
            f"{spec.dataset}_evaluation; a bare name lives beside the predictions table "
            "(the same DuckDB file or BigQuery dataset), a bare --labels_table in "
            "--labels_db when given.",
            [PredictionsOptions, EvaluationOptions, LabelsSourceOptions, TableOutputOptions],
            argv,
            required=["predictions_table"],
        )
        job = job_from_options(spec, options)
    except UsageError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = evaluate(spec, job)
    except Exception as e:  # A missing table or column, in either backend.
        print(f"{prog}: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"{prog}: {job.predictions} ({result.predictions} rows) joined with {job.labels} "
        f"({result.labels} rows) on {PATH_COLUMN}: {result.matched} matched; "
        f"uncertain labels: {job.policy}",
        file=out,
    )
    print(format_leaderboard(result), file=out)
    written = write_evaluation(result, job, spec)
    print(f"{prog}: {written} rows written to {job.output}", file=out)
    return EXIT_OK
