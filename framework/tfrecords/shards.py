"""TFRecord output folders: shards written by the runner, features.json beside them.

A folder holds ``data-SSSSS-of-NNNNN.tfrecord`` shards from one run only: an
earlier run's shards are deleted before a run starts (a glob over the folder
would otherwise read both), and ``features.json`` says how to parse them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import apache_beam as beam
import attrs
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from datathon_etl.framework.tfrecords.features import FeatureSpec

__all__ = [
    "FEATURES_FILE",
    "WriteShards",
    "count_records",
    "delete_stale_shards",
    "shard_counts",
    "write_features_file",
]

SHARD_PREFIX = "data"
FEATURES_FILE = "features.json"


class WriteShards(beam.PTransform):
    """Serialized examples -> ``<folder>/data-*-of-*.tfrecord``, sharded by the runner.

    The runner picks the shard count: fixing it adds a shuffle.
    """

    def __init__(self, folder: str) -> None:
        super().__init__()
        self._folder = folder

    def expand(self, records: beam.PCollection) -> Any:
        """Writes the records; returns the shard names."""
        return records | "Write" >> beam.io.WriteToTFRecord(
            f"{self._folder}/{SHARD_PREFIX}", file_name_suffix=".tfrecord"
        )


def delete_stale_shards(folders: Sequence[str]) -> None:
    """Deletes the shards an earlier run left in ``folders``."""
    patterns = [f"{folder}/{SHARD_PREFIX}-*.tfrecord" for folder in folders]
    stale = [m.path for r in FileSystems.match(patterns) for m in r.metadata_list]
    if stale:
        FileSystems.delete(stale)


def write_features_file(folder: str, specs: Sequence[FeatureSpec], **extra: Any) -> None:
    """Writes ``<folder>/features.json``: each feature's spec, plus ``extra`` keys."""
    body: Mapping[str, Any] = {
        **extra,
        "image_feature": specs[0].name,
        "features": {s.name: attrs.asdict(s) for s in specs},
    }
    with FileSystems.create(
        f"{folder}/{FEATURES_FILE}", compression_type=CompressionTypes.UNCOMPRESSED
    ) as f:
        f.write((json.dumps(body, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def count_records(uri: str) -> int:
    """Counts the records of one TFRecord file by walking its length headers.

    Each record is ``uint64 length, uint32 crc, data, uint32 crc``: only the
    12-byte headers are read, the data is skipped.
    """
    count = 0
    with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        while header := f.read(12):
            if len(header) < 12:
                raise ValueError(f"{uri}: truncated record header after {count} records")
            f.seek(int.from_bytes(header[:8], "little") + 4, 1)
            count += 1
    return count


def shard_counts(folders: Sequence[str], root: str) -> dict[str, int]:
    """Records per shard in ``folders``, keyed by the shard's path relative to ``root``."""
    patterns = [f"{folder}/{SHARD_PREFIX}-*.tfrecord" for folder in folders]
    shards = sorted(m.path for r in FileSystems.match(patterns) for m in r.metadata_list)
    return {path.removeprefix(f"{root}/"): count_records(path) for path in shards}
