"""TFRecord output folders: shards written by the runner, features.json beside them.

A folder holds ``data-SSSSS-of-NNNNN.tfrecord`` shards from one run only: an
earlier run's shards are deleted before a run starts (a glob over the folder
would otherwise read both), and ``features.json`` says how to parse them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import apache_beam as beam
import attrs
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.tfrecordio import _TFRecordUtil  # Beam's own TFRecord framing
from apache_beam.options.value_provider import StaticValueProvider

from datathon_etl.framework.manifest import delete_tree
from datathon_etl.framework.tfrecords.features import FeatureSpec

__all__ = [
    "FEATURES_FILE",
    "WriteShards",
    "count_records",
    "finish_folders",
    "prepare_folders",
    "shard_counts",
    "staging_dir",
    "write_features_file",
]

SHARD_PREFIX = "data"
FEATURES_FILE = "features.json"
STAGING = "_staging"
"""Where `WriteShards` stages files, inside the TFRecord root (see `staging_dir`)."""


class WriteShards(beam.PTransform):
    """``(folder, record)`` pairs -> ``<root>/<folder>/data-SSSSS-of-NNNNN.tfrecord``.

    One `fileio.WriteToFiles` writes every folder: a sink per folder would add
    a dozen transforms each, and every transform costs start-up time on every
    runner. Each bundle writes one file per folder it holds (the runner picks
    the shard count: fixing it adds a shuffle). A bundle may open a writer for
    every folder, so no record takes fileio's grouped path: raw records are
    never shuffled. Folders are `prepare_folders`' job before the run, and
    `finish_folders`' after it.
    """

    def __init__(self, root: str, folders: Sequence[str], temp_dir: str) -> None:
        """Writes under ``root``; ``folders`` are the relative folder names ("" = root).

        ``temp_dir`` must be on ``root``'s filesystem: `staging_dir`.
        """
        super().__init__()
        self._root = root
        self._writers = max(len(folders), 1)
        self._temp_dir = temp_dir

    def expand(self, pairs: beam.PCollection) -> Any:
        """Writes the records; returns the written files' `fileio.FileResult`s."""
        return pairs | "WriteToFiles" >> fileio.WriteToFiles(
            path=self._root,
            destination=_folder,
            sink=_sink,
            file_naming=_shard_name,
            temp_directory=StaticValueProvider(str, self._temp_dir),
            max_writers_per_bundle=self._writers,
        )


class _TFRecordSink(fileio.FileSink):
    """Writes each pair's record with TFRecord framing (length, CRCs)."""

    def open(self, fh: Any) -> None:
        self._fh = fh

    def write(self, record: tuple[str, bytes]) -> None:
        _TFRecordUtil.write_record(self._fh, record[1])

    def flush(self) -> None:
        self._fh.flush()


def _folder(pair: tuple[str, bytes]) -> str:
    return pair[0]


def _sink(_: str) -> _TFRecordSink:
    return _TFRecordSink()


def _shard_name(
    window: Any, pane: Any, shard: int, total: int, compression: Any, folder: str
) -> str:
    name = f"{SHARD_PREFIX}-{shard:05d}-of-{total:05d}.tfrecord"
    return f"{folder}/{name}" if folder else name


def staging_dir(root: str, run_id: str) -> str:
    """Where a run's files wait before their move: under ``root`` itself.

    The move is then a rename within one filesystem; the run's scratch folder
    (under ``--output_dir``) may be on another (a local folder, a gs:// root).
    """
    return f"{root}/{STAGING}/{run_id}"


def finish_folders(root: str, folders: Sequence[str]) -> None:
    """After a run: removes ``root``'s staging; a folder that got no record gets one empty shard.

    An empty shard (zero bytes: zero records) keeps ``<folder>/*.tfrecord``
    a valid glob for readers such as `tf.data.Dataset.list_files`.
    """
    _remove_staging(root)
    for folder, path in zip(folders, _paths(root, folders), strict=True):
        (found,) = FileSystems.match([f"{path}/{SHARD_PREFIX}-*.tfrecord"])
        if not found.metadata_list:
            name = _shard_name(None, None, 0, 1, None, folder)
            with FileSystems.create(
                f"{root}/{name}", compression_type=CompressionTypes.UNCOMPRESSED
            ):
                pass


def _remove_staging(root: str) -> None:
    delete_tree(f"{root}/{STAGING}")


def _paths(root: str, folders: Sequence[str]) -> list[str]:
    return [f"{root}/{folder}".rstrip("/") for folder in folders]


def prepare_folders(root: str, folders: Sequence[str]) -> None:
    """Before a run: deletes what an earlier run left (shards, staging), creates local folders.

    fileio moves each finished file into its folder and only logs a failed
    move, so a missing local folder would lose the file.
    """
    _remove_staging(root)
    paths = _paths(root, folders)
    patterns = [f"{path}/{SHARD_PREFIX}-*.tfrecord" for path in paths]
    stale = [m.path for r in FileSystems.match(patterns) for m in r.metadata_list]
    if stale:
        FileSystems.delete(stale)
    for path in paths:
        if FileSystems.get_scheme(path) is None:  # local: object stores have no folders
            os.makedirs(path, exist_ok=True)


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
