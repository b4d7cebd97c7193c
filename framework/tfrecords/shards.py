"""TFRecord output folders: shards written by the runner, features.json beside them.

A folder holds ``data-SSSSS-of-NNNNN.tfrecord`` shards from one run only: an
earlier run's shards are deleted before a run starts (a glob over the folder
would otherwise read both), and ``features.json`` says how to parse them.
The other sharded outputs (WebDataset, Parquet:
`datathon_etl.framework.shard_formats`) use the same folders and helpers,
with their own format.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import apache_beam as beam
import attrs
from apache_beam.io.filesystem import BeamIOError, CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.tfrecordio import _TFRecordUtil  # Beam's own TFRecord framing

from datathon_etl.framework.run_layout import delete_tree
from datathon_etl.framework.sharded_files import (
    Records,
    ShardFormat,
    Sharding,
    Writable,
    WriteShardedFiles,
    make_local_folders,
)
from datathon_etl.framework.tfrecords.features import FeatureSpec

__all__ = [
    "FEATURES_FILE",
    "TFRECORDS",
    "WriteShards",
    "count_records",
    "finish_folders",
    "first_records",
    "prepare_folders",
    "read_features_file",
    "shard_counts",
    "shard_prefix",
    "staging_dir",
    "write_features_file",
]

SHARD_PREFIX = "data"
SUFFIX = ".tfrecord"
FEATURES_FILE = "features.json"
STAGING = "_staging"
"""Where `WriteShards` stages files, inside the TFRecord root (see `staging_dir`)."""


class WriteShards(beam.PTransform):
    """``(folder, record)`` pairs -> ``<root>/<folder>/data-SSSSS-of-NNNNN.tfrecord``.

    One transform for every folder (`WriteShardedFiles`): each bundle streams
    its records into files of a folder, closed at ``sharding.max_bytes``
    (``--tfrecord_shard_mb``), or spread over ``sharding.shards`` shards
    (``--num_shards``) that are joined once all bundles are done. Records are
    never shuffled. A folder that gets no record holds one empty shard (or
    ``--num_shards`` empty shards). Folders are `prepare_folders`' job before
    the run, and `finish_folders`' after it.
    """

    def __init__(
        self,
        root: str,
        folders: Sequence[str],
        temp_dir: str,
        sharding: Sharding,
        format: ShardFormat | None = None,
    ) -> None:
        """Writes under ``root``; ``folders`` are the relative folder names ("" = root).

        ``temp_dir`` must be on ``root``'s filesystem: `staging_dir`.
        ``format`` is TFRecords (pairs of serialised records) unless given
        (e.g. `datathon_etl.framework.shard_formats.ParquetRows`).
        """
        super().__init__()
        self._write = WriteShardedFiles(
            root,
            temp_dir,
            prefix=_pair_prefix,
            format=format or TFRECORDS,
            prefixes=[shard_prefix(folder) for folder in folders],
            sharding=sharding,
        )

    def expand(self, pairs: beam.PCollection) -> beam.PCollection[str]:
        """Writes the records; returns the shards' URIs."""
        return pairs | self._write


def _write_record(fh: Writable, record: bytes) -> None:
    _TFRecordUtil.write_record(fh, record)  # length, CRCs, data, CRC


TFRECORDS = Records(SUFFIX, _write_record)


def shard_prefix(folder: str) -> str:
    """The file prefix of a folder's shards, relative to the TFRecord root."""
    return f"{folder}/{SHARD_PREFIX}" if folder else SHARD_PREFIX


def _pair_prefix(pair: tuple[str, bytes]) -> str:
    return shard_prefix(pair[0])


def staging_dir(root: str, run_id: str) -> str:
    """Where a run's files wait before their move: under ``root`` itself.

    The move is then a rename within one filesystem; the run's scratch folder
    (under ``--output_dir``) may be on another (a local folder, a gs:// root).
    """
    return f"{root}/{STAGING}/{run_id}"


def finish_folders(root: str) -> None:
    """After a run: removes ``root``'s staging (pieces a retried bundle left)."""
    delete_tree(f"{root}/{STAGING}")


def prepare_folders(root: str, folders: Sequence[str], suffix: str = SUFFIX) -> None:
    """Before a run: deletes what an earlier run left (shards, staging), creates local folders."""
    delete_tree(f"{root}/{STAGING}")
    patterns = [f"{root}/{shard_prefix(folder)}-*{suffix}" for folder in folders]
    stale = [m.path for r in FileSystems.match(patterns) for m in r.metadata_list]
    if stale:
        FileSystems.delete(stale)
    make_local_folders(root, [shard_prefix(folder) for folder in folders])


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


def first_records(uri: str, count: int) -> list[bytes]:
    """The first ``count`` records of one TFRecord file (fewer if it holds fewer).

    Raises:
        ValueError: A record is cut short.
    """
    records: list[bytes] = []
    with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        while len(records) < count and (header := f.read(12)):
            length = int.from_bytes(header[:8], "little") if len(header) == 12 else -1
            data = f.read(length + 4) if length >= 0 else b""
            if len(data) != length + 4:
                raise ValueError(f"{uri}: record {len(records) + 1} is cut short")
            records.append(data[:length])
    return records


def read_features_file(folder: str) -> tuple[str, FeatureSpec]:
    """``<folder>/features.json``'s image feature name and the spec of its ``path`` feature.

    Raises:
        ValueError: There is none, or it names no image or path feature.
    """
    uri = f"{folder}/{FEATURES_FILE}"
    try:
        with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            body = json.loads(f.read().decode("utf-8"))
        return str(body["image_feature"]), FeatureSpec(**body["features"]["path"])
    except (OSError, BeamIOError, KeyError, TypeError, ValueError) as e:
        raise ValueError(f"cannot read {uri}: {e}") from e


def shard_counts(
    folders: Sequence[str],
    root: str,
    suffix: str = SUFFIX,
    count: Callable[[str], int] = count_records,
) -> dict[str, int]:
    """Records per shard in ``folders``, keyed by the shard's path relative to ``root``.

    Args:
        folders: The folders' URIs.
        root: What the keys are relative to.
        suffix: The shards' ending (TFRecords by default).
        count: Counts one shard's records (TFRecords by default).
    """
    patterns = [f"{folder}/{SHARD_PREFIX}-*{suffix}" for folder in folders]
    shards = sorted(m.path for r in FileSystems.match(patterns) for m in r.metadata_list)
    return {path.removeprefix(f"{root}/"): count(path) for path in shards}
