"""Flags of inference (and the predictions table, shared with evaluation).

Table flags, one meaning each in every command:

* ``--predictions_table`` (alias ``--bigquery_table``, the original
  ``inference_to_bigquery.py``'s name) always names the predictions table:
  written by ``infer``, read by ``evaluate``. It is defined once, in
  `PredictionsOptions`, which both commands use.
* ``--labels_table`` (`LabelsSourceOptions`) always names a labels table.
* ``--output_table`` (`TableOutputOptions`, alias ``--output_bq_table``) always
  names the table the command writes: the labels for ``ingest``, the
  predictions for ``infer`` (so there it is a second name for
  ``--predictions_table``; giving both with different values is an error),
  the leaderboard for ``evaluate``.

Evaluation's own flags are in ``framework/evaluate/options.py``.

Beam builds one parser from every `PipelineOptions` subclass imported and
argparse refuses a flag defined twice, so no flag here repeats one of
the table options' or Beam's.
"""

from __future__ import annotations

import argparse

from apache_beam.options.pipeline_options import PipelineOptions

from datathon_etl.framework.inference.preprocess import DEFAULT_NORMALIZE
from datathon_etl.framework.sources.options import glob_flag

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "InferenceOptions",
    "PredictionsOptions",
    "tfrecord_glob",
]

DEFAULT_BATCH_SIZE = 32


def tfrecord_glob(pattern: str) -> str:
    """Reads a TFRecord glob flag: ``dir/*`` means every ``.tfrecord`` below ``dir``.

    The original pipelines wrote a split's shards into one folder and read
    them back with ``dir/*``; the ingestion here writes ``dir/<split>/<view>/``
    beside ``features.json`` and the run's records, which ``dir/*`` would
    miss or mistake for shards.
    """
    if pattern.endswith("/*"):
        pattern = pattern[:-1] + "**.tfrecord"
    return glob_flag(pattern)


class InferenceOptions(PipelineOptions):
    """The inputs of ``infer``, with the original ``inference_to_bigquery.py``'s flag names."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("inference")
        group.add_argument(
            "--input_tfrecord_pattern",
            "--tfrecords",
            dest="input_tfrecord_pattern",
            nargs="+",
            type=tfrecord_glob,
            default=None,
            help=(
                "One or more globs of TFRecord files written by the dataset's ingestion, "
                "local or gs:// ('**' crosses folders). One ending in '/*' (the original "
                "pipelines' 'every file of this folder') reads every .tfrecord below "
                "that folder, as the ingestion writes a folder per split and view. "
                "--tfrecords is an alias."
            ),
        )
        group.add_argument(
            "--keras_model",
            "--model",
            dest="keras_model",
            default=None,
            help=(
                "The model: a .keras or .h5 file, a TensorFlow SavedModel folder (pure "
                "tensor ops only), or an .onnx file (e.g. exported from PyTorch, with a "
                "dynamic batch dimension), local or gs://. It must take one image batch "
                "(what --normalize gives, stacked) and output one logit per label "
                "[batch, labels]. --model is an alias."
            ),
        )
        group.add_argument(
            "--trusted_model",
            action="store_true",
            help=(
                "Load the model without the safety checks: Keras' safe mode is off "
                "(Lambda layers and arbitrary Python objects run) and a SavedModel's ops "
                "are not checked (it may read, write or delete any file the command can, "
                "open connections, run Python). Only for a model whose code you have read "
                "or wrote yourself; never for a team's submission."
            ),
        )
        group.add_argument(
            "--batch_size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"Images per model call (default {DEFAULT_BATCH_SIZE}).",
        )
        group.add_argument(
            "--normalize",
            default=DEFAULT_NORMALIZE,
            help=(
                "The function 'package.module:function' that turns decoded pixels "
                "(uint8 [H, W, C]) into the model's input; importable on the workers. "
                "Default: pixels / 255, as the training example does."
            ),
        )


class PredictionsOptions(PipelineOptions):
    """The predictions table: written by ``infer``, read by ``evaluate``."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("predictions")
        group.add_argument(
            "--predictions_table",
            "--bigquery_table",
            dest="predictions_table",
            default=None,
            help=(
                "The predictions table. 'project:dataset.table' or "
                "'project.dataset.table': BigQuery; 'path/to/file.duckdb:table': a "
                "DuckDB file; a bare 'table' (infer only): in <output_dir>/tables.duckdb. "
                "infer replaces it (default <dataset>_predictions); evaluate reads it. "
                "--bigquery_table is an alias (the original's name)."
            ),
        )
