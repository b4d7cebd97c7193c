"""`IngestOptions`: the inputs and outputs of a dataset's ingestion."""

from __future__ import annotations

import argparse

from apache_beam.options.pipeline_options import PipelineOptions

from datathon_etl.framework.archives import DEFAULT_MAX_MEMBER_BYTES

__all__ = ["IngestOptions"]


class IngestOptions(PipelineOptions):
    """Flags of the original ``prepare_mimic_cxr.py``, with the same names and meaning."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("inputs and outputs")
        group.add_argument(
            "--input_tars",
            nargs="+",
            default=None,
            help="One or more globs of tar files holding the images, local or gs:// "
            "(plain tars are read by byte range on every worker; compressed ones are "
            "streamed).",
        )
        group.add_argument(
            "--input_csv",
            nargs="+",
            default=None,
            help="One or more globs of label CSVs (plain or gzipped).",
        )
        group.add_argument(
            "--output_jpg_dir",
            default=None,
            help="Write the resized images here, at their relative paths (optional).",
        )
        group.add_argument(
            "--output_tfrecord_dir",
            default=None,
            help="Write TFRecords here, one folder per split and view, with "
            "features.json beside them (optional).",
        )
        group.add_argument(
            "--path_match_regex",
            default=None,
            help="Only tar members whose name matches this regular expression in full are "
            "read; the others are counted as skipped (default: all members).",
        )
        group.add_argument(
            "--max_member_bytes",
            type=int,
            default=DEFAULT_MAX_MEMBER_BYTES,
            help="Tar members larger than this are quarantined (default: 2 GiB).",
        )
