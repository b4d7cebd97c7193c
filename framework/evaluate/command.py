"""``datathon-etl <dataset> evaluate``: flags -> job -> scores -> leaderboard printed and written.

Exit codes: 0 when every submission was scored and ranked; 1 when one was
refused (its reason is printed and written) or left images of the split out
without ``--allow_partial_coverage``; 2 for a wrong flag, a missing input or
labels that cannot be read, in one line before any submission is read
(`datathon_etl.framework.command`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TextIO

import attrs
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions

from datathon_etl.framework.command import Command
from datathon_etl.framework.errors import EXIT_FAILED, EXIT_OK, UsageError
from datathon_etl.framework.evaluate.backends import read_labels, write_leaderboard
from datathon_etl.framework.evaluate.leaderboard import format_leaderboard, leaderboard_table
from datathon_etl.framework.evaluate.options import EvaluationOptions
from datathon_etl.framework.evaluate.policy import (
    EvaluationSpec,
    UncertainPolicy,
    evaluation_spec,
)
from datathon_etl.framework.evaluate.score import (
    EvaluationSplit,
    Settings,
    TeamResult,
    score_submission,
)
from datathon_etl.framework.evaluate.submissions import (
    Submission,
    SubmissionError,
    find_submissions,
    read_submission,
)
from datathon_etl.framework.inference.options import PredictionsOptions
from datathon_etl.framework.preflight import check_cloud_resources
from datathon_etl.framework.schema.package import Main, entry_point, load_package
from datathon_etl.framework.tables import BigQueryTable, DuckDBTable, TableSpec, parse_table_spec
from datathon_etl.framework.tables.options import LabelsSourceOptions, TableOutputOptions

__all__ = [
    "Evaluate",
    "EvaluationJob",
    "command",
    "evaluate",
    "job_from_options",
    "run_evaluation",
]


@attrs.frozen
class EvaluationJob:
    """What evaluate reads and writes.

    Attributes:
        submissions: The teams' predictions.
        labels: The organiser's labels table.
        output: The leaderboard table to replace, or None.
        settings: How submissions are scored.
        project: BigQuery: the project that runs the queries.
    """

    submissions: tuple[Submission, ...]
    labels: TableSpec
    output: TableSpec | None = None
    settings: Settings = Settings()
    project: str | None = None


def _parse_spec(flag: str, text: str, default_database: str | None) -> TableSpec:
    try:
        return parse_table_spec(text, default_database=default_database)
    except ValueError as e:
        raise UsageError(f"{flag}: {e}") from e


def _settings(spec: EvaluationSpec, flags: EvaluationOptions) -> Settings:
    if spec.split is None and flags.split is not None:
        raise UsageError(f"--split: {spec.dataset} declares no split; every labels row is scored")
    if spec.split is not None and flags.split not in spec.splits:
        raise UsageError(
            f"--split is required: one of {', '.join(spec.splits)} "
            f"(the labels' {spec.split} column)"
        )
    if flags.bootstrap_samples < 0:
        raise UsageError(f"--bootstrap_samples must be 0 or more, got {flags.bootstrap_samples}")
    if flags.min_positives < 1:
        raise UsageError(f"--min_positives must be positive, got {flags.min_positives}")
    return Settings(
        policy=UncertainPolicy(flags.uncertain),
        split=flags.split,
        samples=flags.bootstrap_samples,
        seed=flags.bootstrap_seed,
        min_positives=flags.min_positives,
        allow_partial=flags.allow_partial_coverage,
    )


def job_from_options(spec: EvaluationSpec, options: PipelineOptions) -> EvaluationJob:
    """Validates evaluate's flags and finds its inputs; reads nothing of the teams'.

    Raises:
        UsageError: A missing, contradictory or unusable flag, a missing file,
            or an unusable cloud resource (see `check_cloud_resources`).
    """
    flags = options.view_as(EvaluationOptions)
    settings = _settings(spec, flags)
    predictions = options.view_as(PredictionsOptions).predictions_table
    texts = [*([predictions] if predictions else []), *flags.submissions]
    if not texts:
        raise UsageError("no submission: give --submissions (or --predictions_table)")
    try:
        submissions = find_submissions(texts, spec.dataset)
    except SubmissionError as e:
        raise UsageError(f"--submissions: {e}") from e
    labels_flags = options.view_as(LabelsSourceOptions)
    if labels_flags.labels_query:
        raise UsageError("evaluate reads a whole --labels_table; --labels_query is not used")
    labels = _parse_spec(
        "--labels_table",
        labels_flags.labels_table or f"{spec.dataset}_labels",
        labels_flags.labels_db,
    )
    output_name = options.view_as(TableOutputOptions).output_table or f"{spec.dataset}_leaderboard"
    if isinstance(labels, BigQueryTable) and "." not in output_name and ":" not in output_name:
        output_name = f"{labels.project}:{labels.dataset}.{output_name}"
    output = _parse_spec(
        "--output_table",
        output_name,
        labels.database if isinstance(labels, DuckDBTable) else None,
    )
    team_files = {
        os.path.realpath(s.location.database)
        for s in submissions
        if isinstance(s.location, DuckDBTable)
    }
    if isinstance(output, DuckDBTable) and os.path.realpath(output.database) in team_files:
        raise UsageError(f"--output_table {output}: a team's file; write the leaderboard elsewhere")
    check_cloud_resources(
        options,
        tables={
            "--labels_table": labels,
            "--output_table": output,
            **{
                f"--submissions {s.team}": s.location
                for s in submissions
                if isinstance(s.location, BigQueryTable)
            },
        },
    )
    if isinstance(labels, DuckDBTable) and not os.path.isfile(labels.database):
        raise UsageError(f"--labels_table {labels}: no such DuckDB file")
    return EvaluationJob(
        submissions=tuple(submissions),
        labels=labels,
        output=output,
        settings=settings,
        project=options.view_as(GoogleCloudOptions).project,
    )


def evaluate(
    spec: EvaluationSpec, job: EvaluationJob, split: EvaluationSplit | None = None
) -> list[TeamResult]:
    """Reads and scores every submission; writes nothing.

    A submission that cannot be read as plain rows of the predictions
    schema, or whose rows the checks refuse, gives a refused result.

    Raises:
        ValueError: The labels table cannot be read.
    """
    if split is None:
        split = EvaluationSplit.prepare(spec, read_labels(job.labels, job.project), job.settings)
    results = []
    for submission in job.submissions:
        try:
            rows = read_submission(submission, spec.predictions_schema, job.project)
        except SubmissionError as e:
            results.append(TeamResult(submission.team, str(submission), None, refused=str(e)))
            continue
        results.append(
            score_submission(spec, submission.team, str(submission), rows, split, job.settings)
        )
    return results


class Evaluate(Command[EvaluationJob]):
    """``datathon-etl <dataset> evaluate`` for the data set of ``spec``, printing to ``out``."""

    option_classes = (
        PredictionsOptions,
        EvaluationOptions,
        LabelsSourceOptions,
        TableOutputOptions,
    )

    def __init__(self, spec: EvaluationSpec, out: TextIO | None = None) -> None:
        self.spec = spec
        self.out = out
        self.name = f"{spec.dataset} evaluate"
        self.description = (
            f"Score teams' {spec.dataset} predictions against the labels of one split: "
            "per-label and mean AUROC with 95% bootstrap intervals (resampling patients), "
            "a leaderboard printed and written as a table (replaced on a re-run). "
            "Submissions are read as plain rows (Parquet, CSV, a DuckDB base table, a "
            "BigQuery table) and must cover the split exactly once. Defaults: "
            f"--labels_table {spec.dataset}_labels in --labels_db, and --output_table "
            f"{spec.dataset}_leaderboard beside the labels table."
        )

    def plan(self, options: PipelineOptions) -> EvaluationJob:
        """See `job_from_options`."""
        return job_from_options(self.spec, options)

    def execute(self, options: PipelineOptions, job: EvaluationJob) -> int:
        """Scores every submission, prints and writes the leaderboard."""
        out = self.out or sys.stdout
        prog, spec, settings = self.prog, self.spec, job.settings
        try:
            split = EvaluationSplit.prepare(spec, read_labels(job.labels, job.project), settings)
        except Exception as e:  # A missing table or column, in either backend: nothing ran yet.
            reason = " ".join(str(e).split())  # BigQuery's messages span lines
            raise UsageError(f"--labels_table {job.labels}: {type(e).__name__}: {reason}") from e
        where = f"the {settings.split} split" if settings.split else "the labels"
        print(
            f"{prog}: {job.labels}: {where} has {len(split.patients)} patients; uncertain "
            f"labels: {settings.policy}; {settings.samples} bootstrap samples over patients "
            f"(seed {settings.seed}); labels with under {settings.min_positives} positives or "
            "negatives are not ranked",
            file=out,
        )
        results = evaluate(spec, job, split)
        for result in results:
            if result.refused:
                print(f"{prog}: {result.team} refused: {result.refused}", file=sys.stderr)
        print(format_leaderboard(results, settings), file=out)
        if job.output is not None:
            table = leaderboard_table(results, settings)
            written = write_leaderboard(table, job.output, job.project)
            print(f"{prog}: {written} rows written to {job.output}", file=out)
        complete = all(r.rankable(settings) for r in results)
        return EXIT_OK if complete else EXIT_FAILED


def run_evaluation(
    spec: EvaluationSpec, argv: Sequence[str] | None = None, *, out: TextIO | None = None
) -> int:
    """Parses flags, scores every submission, prints and writes the leaderboard; the exit code."""
    return Evaluate(spec, out).main(argv)


def command(package: str | None) -> tuple[EvaluationSpec, Main]:
    """A generated package's ``evaluate``: (its spec, its ``main``)."""
    return entry_point(evaluation_spec(load_package(package)), run_evaluation)
