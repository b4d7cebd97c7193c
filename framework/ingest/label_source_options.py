"""`LabelSourceOptions`: which label file an ingestion of labels per group reads."""

from __future__ import annotations

import argparse

from apache_beam.options.pipeline_options import PipelineOptions

__all__ = ["LabelSourceOptions"]


class LabelSourceOptions(PipelineOptions):
    """``--labels_source``, for data sets with labels per group from several labelers."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("group labels")
        group.add_argument(
            "--labels_source",
            default=None,
            help=(
                "Which label file of --input_csv to read, by the end of its name: for "
                "MIMIC-CXR-JPG, chexpert (mimic-cxr-2.0.0-chexpert.csv.gz, the default) "
                "or negbio (mimic-cxr-2.0.0-negbio.csv.gz). The metadata and split "
                "files are told apart the same way (...-metadata.csv.gz, ...-split.csv.gz)."
            ),
        )
