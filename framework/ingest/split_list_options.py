"""`SplitListOptions`: the split's list files, for data sets that declare them."""

from __future__ import annotations

import argparse

from apache_beam.options.pipeline_options import PipelineOptions

from datathon_etl.framework.sources.options import glob_flag

__all__ = ["SplitListOptions"]


class SplitListOptions(PipelineOptions):
    """``--split_lists``, for data sets whose split comes as list files (`Dataset.split_lists`)."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("split lists")
        group.add_argument(
            "--split_lists",
            nargs="+",
            type=glob_flag,
            default=None,
            help=(
                "Globs of the split's list files (one image path per line), told apart by "
                "their names: every file the data set declares, once (NIH ChestX-ray14: "
                "train_val_list.txt and test_list.txt)."
            ),
        )
