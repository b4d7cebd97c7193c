"""Where a pipeline writes its sharded outputs, and in shards of what size.

`TFRecordOptions`: the TFRecords and the shards' size or count, for every
format; `ShardOutputOptions`: the WebDataset and Parquet shards beside them.
"""

from __future__ import annotations

import argparse

from apache_beam.options.pipeline_options import PipelineOptions

from datathon_etl.framework.sharded_files import Sharding

__all__ = ["DEFAULT_SHARD_MB", "ShardOutputOptions", "TFRecordOptions", "tfrecord_sharding"]

DEFAULT_SHARD_MB = 200.0
"""The usual guidance for `tf.data`: shards of 100 to 200 MB, many per folder."""
MB = 1_000_000


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


class TFRecordOptions(PipelineOptions):
    """The original pipelines' TFRecord output flag, and the shard size or count."""

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
        sizes = group.add_mutually_exclusive_group()
        sizes.add_argument(
            "--shard_mb",
            "--tfrecord_shard_mb",
            dest="tfrecord_shard_mb",
            metavar="MB",
            type=_positive_float,
            default=None,
            help=(
                f"Start a new shard once one holds this many MB (10^6 bytes; default "
                f"{DEFAULT_SHARD_MB:g}): a folder gets as many shards as its size needs. "
                "Sizes every sharded output (TFRecord, WebDataset, Parquet); "
                "--tfrecord_shard_mb is an alias."
            ),
        )
        sizes.add_argument(
            "--num_shards",
            type=_positive_int,
            default=None,
            help=(
                "Exactly this many shards per folder of each sharded output, records "
                "spread evenly over them (instead of --shard_mb)."
            ),
        )


class ShardOutputOptions(PipelineOptions):
    """The WebDataset and Parquet outputs, for PyTorch and Hugging Face users."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("WebDataset and Parquet")
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


def tfrecord_sharding(options: PipelineOptions) -> Sharding:
    """The shard size (``--shard_mb``) or count (``--num_shards``) asked for, for every format."""
    view = options.view_as(TFRecordOptions)
    shards: int | None = view.num_shards
    if shards is not None:
        return Sharding(shards=shards)
    megabytes: float = view.tfrecord_shard_mb or DEFAULT_SHARD_MB
    return Sharding(max_bytes=max(int(megabytes * MB), 1))
