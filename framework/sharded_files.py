"""``(key, payload)`` pairs -> sharded files, one `fileio.WriteToFiles` for every file prefix.

Each pair's key maps to a file prefix relative to a root (``train/frontal/data``,
``_quarantine/quarantine``); files are named ``<root>/<prefix>-SSSSS-of-NNNNN<suffix>``.
One sink serves every prefix: a sink per prefix would add a dozen transforms each,
and every transform costs each run start-up time. A bundle may open a writer for
every prefix, so no payload takes fileio's grouped path: payloads are never
shuffled.

fileio only logs a failed move, so a local folder that receives files must exist
before the run (`make_local_folders`). A prefix that got no payload gets no file;
`ensure_a_shard` then writes one empty file, so ``<prefix>-*<suffix>`` always
matches something.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.value_provider import StaticValueProvider

__all__ = ["WriteShardedFiles", "ensure_a_shard", "make_local_folders", "shard_name"]


class WriteShardedFiles(beam.PTransform):
    """Writes each pair's payload into a shard of its key's prefix (see the module docstring).

    Args:
        root: The folder (local or ``gs://``) the prefixes are relative to.
        temp_dir: Where files wait before their move; on ``root``'s filesystem.
        suffix: The file names' ending, e.g. ``.tfrecord``.
        prefix: Maps a pair to its prefix (picklable, e.g. a module function).
        write: Appends one payload to an open file (picklable).
        prefixes: How many prefixes there are at most (writers per bundle).
    """

    def __init__(
        self,
        root: str,
        temp_dir: str,
        *,
        suffix: str,
        prefix: Callable[[Any], str],
        write: Callable[[BinaryIO, Any], None],
        prefixes: int,
    ) -> None:
        super().__init__()
        self._root = root
        self._temp_dir = temp_dir
        self._suffix = suffix
        self._prefix = prefix
        self._write = write
        self._writers = max(prefixes, 1)

    def expand(self, pairs: beam.PCollection) -> Any:
        """Writes the payloads; returns the written files' `fileio.FileResult`s."""
        return pairs | "WriteToFiles" >> fileio.WriteToFiles(
            path=self._root,
            destination=self._prefix,
            sink=_SinkFactory(self._write),
            file_naming=_Naming(self._suffix),
            temp_directory=StaticValueProvider(str, self._temp_dir),
            max_writers_per_bundle=self._writers,
        )


def shard_name(prefix: str, shard: int, total: int, suffix: str) -> str:
    """``<prefix>-SSSSS-of-NNNNN<suffix>``."""
    return f"{prefix}-{shard:05d}-of-{total:05d}{suffix}"


class _Naming:
    """fileio's ``file_naming``: the destination is the prefix."""

    def __init__(self, suffix: str) -> None:
        self._suffix = suffix

    def __call__(
        self, window: Any, pane: Any, shard: int, total: int, compression: Any, prefix: str
    ) -> str:
        return shard_name(prefix, shard, total, self._suffix)


class _PayloadSink(fileio.FileSink):
    """Writes each pair's payload with the given function."""

    def __init__(self, write: Callable[[BinaryIO, Any], None]) -> None:
        self._write = write

    def open(self, fh: BinaryIO) -> None:
        self._fh = fh

    def write(self, pair: tuple[Any, Any]) -> None:
        self._write(self._fh, pair[1])

    def flush(self) -> None:
        self._fh.flush()


class _SinkFactory:
    """fileio's ``sink``: a new sink per file, whatever the prefix."""

    def __init__(self, write: Callable[[BinaryIO, Any], None]) -> None:
        self._write = write

    def __call__(self, prefix: str) -> _PayloadSink:
        return _PayloadSink(self._write)


def make_local_folders(root: str, prefixes: Sequence[str]) -> None:
    """Creates the folders the prefixes' files go into, when ``root`` is local."""
    if FileSystems.get_scheme(root) is not None:  # object stores have no folders
        return
    for prefix in prefixes:
        os.makedirs(os.path.dirname(f"{root}/{prefix}"), exist_ok=True)


def ensure_a_shard(root: str, prefix: str, suffix: str) -> None:
    """Writes one empty ``<prefix>-00000-of-00001<suffix>`` if the prefix has no file."""
    (found,) = FileSystems.match([f"{root}/{prefix}-*{suffix}"])
    if not found.metadata_list:
        empty = f"{root}/{shard_name(prefix, 0, 1, suffix)}"
        with FileSystems.create(empty, compression_type=CompressionTypes.UNCOMPRESSED):
            pass
