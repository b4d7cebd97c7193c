"""`TFRecordOptions`: where a pipeline writes its TFRecords."""

from __future__ import annotations

import argparse

from apache_beam.options.pipeline_options import PipelineOptions

__all__ = ["TFRecordOptions"]


class TFRecordOptions(PipelineOptions):
    """The original pipelines' TFRecord output flag."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("TFRecords")
        group.add_argument(
            "--output_tfrecord_dir",
            "--output_tfrecord_prefix",
            dest="output_tfrecord_dir",
            default=None,
            help=(
                "Folder for the TFRecord shards (data-*-of-*.tfrecord, replacing an "
                "earlier run's) and features.json, local or gs://. "
                "--output_tfrecord_prefix is an alias."
            ),
        )
