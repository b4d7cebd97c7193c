"""`IngestOptions`: the inputs and outputs of a dataset's ingestion."""

from __future__ import annotations

import argparse

from apache_beam.options.pipeline_options import PipelineOptions

from datathon_etl.framework.sources.options import glob_flag

__all__ = ["IngestOptions"]


class IngestOptions(PipelineOptions):
    """Flags of the original ``prepare_mimic_cxr.py``, with the same names and meaning.

    Beside them, the WebDataset and Parquet outputs. The tar, path-match and
    TFRecord flags come from `TarOptions`,
    `MatchOptions` and `TFRecordOptions`, shared with other pipelines.
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
        group.add_argument(
            "--output_jpg_dir",
            default=None,
            help="Write the resized images here, at their relative paths (optional).",
        )
        group.add_argument(
            "--output_webdataset_dir",
            default=None,
            help=(
                "Write WebDataset tar shards here (optional): per image <key>.jpg (or .png) "
                "and <key>.json (the labels table's row), in the TFRecords' folders "
                "(data-*-of-*.tar, replacing an earlier run's), sized like them."
            ),
        )
        group.add_argument(
            "--output_parquet_dir",
            default=None,
            help=(
                "Write Parquet shards here (optional): the image (a Hugging Face Image "
                "feature) and every column of the labels table, in the TFRecords' folders "
                "(data-*-of-*.parquet, replacing an earlier run's), sized like them."
            ),
        )
