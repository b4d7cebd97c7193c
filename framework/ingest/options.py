"""`IngestOptions`: the inputs and outputs of a dataset's ingestion."""

from __future__ import annotations

import argparse

from apache_beam.options.pipeline_options import PipelineOptions

from datathon_etl.framework.sources.options import glob_flag

__all__ = ["IngestOptions"]


class IngestOptions(PipelineOptions):
    """Flags of the original ``prepare_mimic_cxr.py``, with the same names and meaning.

    The tar, path-match, image tree, TFRecord, WebDataset and Parquet flags
    come from `TarOptions`, `MatchOptions`, `ImageTreeOptions`,
    `TFRecordOptions` and `ShardOutputOptions`, shared with other pipelines.
    """

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("inputs and outputs")
        group.add_argument(
            "--input_csv",
            nargs="+",
            type=glob_flag,
            default=None,
            help="One or more globs of label CSVs (plain or gzipped).",
        )
