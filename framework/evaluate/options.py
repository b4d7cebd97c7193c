"""The flags of ``evaluate``.

Beside these, evaluate reads the shared ``--predictions_table`` (one more
submission), ``--labels_table``/``--labels_db`` and ``--output_table``.
"""

from __future__ import annotations

import argparse

from apache_beam.options.pipeline_options import PipelineOptions

from datathon_etl.framework.evaluate.policy import UncertainPolicy

__all__ = ["DEFAULT_BOOTSTRAP_SAMPLES", "DEFAULT_MIN_POSITIVES", "EvaluationOptions"]

DEFAULT_BOOTSTRAP_SAMPLES = 1000
DEFAULT_MIN_POSITIVES = 10


class EvaluationOptions(PipelineOptions):
    """How ``evaluate`` scores submissions against labels."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("evaluation")
        group.add_argument(
            "--submissions",
            nargs="+",
            default=[],
            help=(
                "The teams' predictions, each [team=]location: a folder (every .parquet, "
                ".csv and .duckdb file in it, one team each, named by the file), a .parquet "
                "or .csv file, file.duckdb (its <dataset>_predictions table) or "
                "file.duckdb:table, or a BigQuery table. Read as plain rows only."
            ),
        )
        group.add_argument(
            "--split",
            default=None,
            help="The evaluation split (e.g. valid, test): exactly its images are scored.",
        )
        group.add_argument(
            "--allow_partial_coverage",
            action="store_true",
            help=(
                "Rank a submission that leaves images of the split out (scored on the "
                "images it predicts). Without it, missing images make the exit code 1."
            ),
        )
        group.add_argument(
            "--uncertain",
            default=UncertainPolicy.IGNORE.value,
            choices=[policy.value for policy in UncertainPolicy],
            help=(
                "What an uncertain label counts as: ignore (default: left out of that "
                "label's AUROC), negative or positive."
            ),
        )
        group.add_argument(
            "--bootstrap_samples",
            type=int,
            default=DEFAULT_BOOTSTRAP_SAMPLES,
            help=(
                "Bootstrap replicates (resampling patients) for the 95%% intervals "
                f"(default {DEFAULT_BOOTSTRAP_SAMPLES}; 0: no intervals)."
            ),
        )
        group.add_argument(
            "--bootstrap_seed",
            type=int,
            default=0,
            help="The bootstrap's seed (default 0): the same draws for every team.",
        )
        group.add_argument(
            "--min_positives",
            type=int,
            default=DEFAULT_MIN_POSITIVES,
            help=(
                "A label with fewer positives (or negatives) in the split is reported but "
                f"not ranked, nor counted in the mean (default {DEFAULT_MIN_POSITIVES})."
            ),
        )
