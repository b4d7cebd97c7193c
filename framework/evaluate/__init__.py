"""Scoring teams' predictions: the ``evaluate`` command and its leaderboard.

Team submissions are untrusted data: they are read as plain rows, never
run (`submissions`), checked to cover one evaluation split exactly once,
and scored in memory on a DuckDB connection that can reach no file (`sql`,
`score`), per label and on average, with bootstrap intervals over patients
(`auroc`). One module per job:

* `policy`: the label policy (`LabelCodes`, `UncertainPolicy`,
  `label_codes`) and the dataset's `EvaluationSpec` (`evaluation_spec`,
  from its generated package's ``dataset.json``);
* `submissions`: finding and reading submissions (Parquet, CSV, DuckDB and
  BigQuery base tables), conformed to the predictions schema;
* `sql`: the checks, the join with the labels and the label policy in SQL;
* `auroc`: weighted AUROC and the patient bootstrap;
* `score`: one team's result;
* `backends`: the organiser's labels read and the leaderboard written
  (DuckDB or BigQuery);
* `leaderboard`: the ranking, its table and its text;
* `options`, `command`: the flags and the entry point.
"""

from __future__ import annotations

from datathon_etl.framework.evaluate.auroc import bootstrap_counts, interval, weighted_auroc
from datathon_etl.framework.evaluate.command import (
    EvaluationJob,
    evaluate,
    job_from_options,
    run_evaluation,
)
from datathon_etl.framework.evaluate.leaderboard import (
    LEADERBOARD_SCHEMA,
    format_leaderboard,
    leaderboard_table,
    rank,
)
from datathon_etl.framework.evaluate.options import EvaluationOptions
from datathon_etl.framework.evaluate.policy import EvaluationSpec, LabelCodes, UncertainPolicy
from datathon_etl.framework.evaluate.score import (
    Coverage,
    EvaluationSplit,
    LabelScore,
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

__all__ = [
    "LEADERBOARD_SCHEMA",
    "Coverage",
    "EvaluationJob",
    "EvaluationOptions",
    "EvaluationSpec",
    "EvaluationSplit",
    "LabelCodes",
    "LabelScore",
    "Settings",
    "Submission",
    "SubmissionError",
    "TeamResult",
    "UncertainPolicy",
    "bootstrap_counts",
    "evaluate",
    "find_submissions",
    "format_leaderboard",
    "interval",
    "job_from_options",
    "leaderboard_table",
    "rank",
    "read_submission",
    "run_evaluation",
    "score_submission",
    "weighted_auroc",
]
