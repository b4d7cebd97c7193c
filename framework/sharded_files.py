"""``(key, payload)`` pairs -> sharded files ``<root>/<prefix>-SSSSS-of-NNNNN<suffix>``.

Each pair's key maps to a file prefix relative to a root (``train/frontal/data``,
``_quarantine/quarantine``). One transform serves every prefix (a transform
per prefix would add a dozen steps each, and every step costs each run
start-up time), in two steps, as Beam's ``fileio.WriteToFiles`` does:

1. Each bundle streams its payloads into *pieces*: files in a staging folder,
   one open per (prefix, shard) the bundle meets. A piece is closed when it
   reaches `Sharding.max_bytes` (the next payload starts a new one) or when
   the bundle ends. Payloads are never shuffled and never held in memory
   beyond the open files' buffers; only the pieces' names travel on.
2. The pieces' names are grouped by prefix (every declared prefix, so one that
   got no payload is seen too) and each prefix is finished in one step: its
   pieces renamed ``-SSSSS-of-NNNNN`` (the count is known only now), or, with
   `Sharding.shards`, each shard's pieces joined into its file
   (`ShardFormat.join`: concatenated for formats that frame each record,
   such as TFRecords and JSON lines; a tar less each piece's end; Parquet
   row groups copied). A prefix that got no payload gets one empty file
   (`Sharding.shards` empty files with a fixed count) of its format, so
   ``<prefix>-*<suffix>`` always matches.

A `ShardFormat` says how payloads become a file's bytes: `Records` for
formats that frame each record (TFRecords, JSON lines); others (WebDataset
tars, Parquet) are in `datathon_etl.framework.shard_formats`.

Unlike fileio, which only logs a failed move, a move that fails fails the
run; a retried finish step finds its moves done and goes on. Pieces that a
failed (retried) bundle left stay in the staging folder, which the caller
deletes after the run.
"""

from __future__ import annotations

import abc
import contextlib
import os
import random
import shutil
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, BinaryIO, Protocol

import apache_beam as beam
import attrs
from apache_beam.io.filesystem import BeamIOError, CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.windowed_value import WindowedValue

__all__ = [
    "Counting",
    "Records",
    "ShardFormat",
    "ShardWriter",
    "Sharding",
    "Writable",
    "WriteShardedFiles",
    "make_local_folders",
    "shard_name",
]

OPEN_LOCAL_FILES = 1024
"""Open pieces per bundle at most on a local disk: each holds a file descriptor and 8 KiB."""
OPEN_OBJECTS = 32
"""Open pieces per bundle at most on an object store: Beam's GCS writer buffers 16 MiB each."""
FORMAT_BUFFERS = 256 << 20
"""What the open pieces' formats may buffer per bundle at most (`ShardFormat.buffer_bytes`)."""
BLOCK = 64
"""Payloads a bundle gives a shard in a row when (prefix, shard) pairs outnumber open pieces."""
COPY_BUFFER = 8 << 20
"""Bytes read at a time when concatenating pieces."""


@attrs.frozen
class Sharding:
    """How a prefix's payloads are split into files (neither: one file per bundle).

    Attributes:
        max_bytes: A file is closed once it holds this many bytes; the next
            payload starts a new one.
        shards: Exactly this many files per prefix, each payload in one of
            them (round robin within a bundle).
    """

    max_bytes: int | None = None
    shards: int | None = None

    def __attrs_post_init__(self) -> None:
        if self.max_bytes is not None and self.shards is not None:
            raise ValueError("a size per file or a number of files, not both")
        if (self.max_bytes is not None and self.max_bytes < 1) or (
            self.shards is not None and self.shards < 1
        ):
            raise ValueError(f"{self}: sizes and counts must be positive")


class WriteShardedFiles(beam.PTransform):
    """Writes each pair's payload into a file of its key's prefix (see the module docstring).

    Args:
        root: The folder (local or ``gs://``) the prefixes are relative to.
        temp_dir: Where pieces wait for the finish step; on ``root``'s
            filesystem (the finish step renames them).
        prefix: Maps a pair to its prefix, one of ``prefixes`` (picklable).
        format: How payloads become a file (picklable); its suffix ends the
            file names.
        prefixes: Every prefix a pair may map to.
        sharding: How each prefix's payloads are split into files.
    """

    def __init__(
        self,
        root: str,
        temp_dir: str,
        *,
        prefix: Callable[[Any], str],
        format: ShardFormat,
        prefixes: Sequence[str],
        sharding: Sharding = Sharding(),
    ) -> None:
        super().__init__()
        self._root = root
        self._temp_dir = temp_dir
        self._prefix = prefix
        self._format = format
        self._prefixes = list(prefixes)
        self._sharding = sharding

    def expand(self, pairs: beam.PCollection) -> beam.PCollection[str]:
        """Writes the payloads; returns the URIs of the files written."""
        pieces = pairs | "WritePieces" >> beam.ParDo(
            _WritePiecesFn(
                self._temp_dir,
                self._prefix,
                self._format,
                self._sharding,
                len(self._prefixes),
            )
        )
        every_prefix = pairs.pipeline | "Prefixes" >> beam.Create(
            [(prefix, None) for prefix in self._prefixes]
        )
        return (
            (pieces, every_prefix)
            | "AllPieces" >> beam.Flatten()
            | "GroupPieces" >> beam.GroupByKey()
            | "Finish" >> beam.ParDo(_FinishPrefixFn(self._root, self._format, self._sharding))
        )


def shard_name(prefix: str, shard: int, total: int, suffix: str) -> str:
    """``<prefix>-SSSSS-of-NNNNN<suffix>``."""
    return f"{prefix}-{shard:05d}-of-{total:05d}{suffix}"


Piece = tuple[str, tuple[int, str]]
"""``(prefix, (shard, uri))``: a written piece (shard -1 without a fixed count)."""


class Writable(Protocol):
    """What a format writes to."""

    def write(self, data: bytes, /) -> Any:
        """Appends ``data``."""


class ShardWriter(Protocol):
    """One open file of a `ShardFormat`."""

    def write(self, payload: Any, /) -> int:
        """Appends one payload; returns the bytes it adds to the file."""

    def end(self) -> None:
        """Writes what the format needs at the file's end (the caller closes the file)."""


class ShardFormat(abc.ABC):
    """How payloads become one file's bytes, and a shard's pieces one file.

    Attributes:
        suffix: The files' ending, e.g. ``.tfrecord``.
        buffer_bytes: What an open file's writer holds in memory at most
            (Parquet's row group), beside the file's own buffer; it bounds
            how many pieces a bundle keeps open (`FORMAT_BUFFERS`).
    """

    suffix: str
    buffer_bytes: int = 0

    @abc.abstractmethod
    def open(self, file: Writable) -> ShardWriter:
        """Starts a file of this format in ``file``."""

    def join(self, pieces: Sequence[str], out: Writable) -> None:
        """Writes the records of ``pieces`` (files of this format) into ``out``.

        By default the pieces are concatenated: right for formats that frame
        each record and have no header or end. No pieces: an empty file.
        """
        for piece in pieces:
            with FileSystems.open(piece, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                shutil.copyfileobj(f, out, COPY_BUFFER)


@attrs.frozen
class Records(ShardFormat):
    """A format that frames each record itself (TFRecords, JSON lines).

    Attributes:
        suffix: The files' ending.
        write_record: Appends one payload's framed record to a file (picklable).
    """

    suffix: str
    write_record: Callable[[Writable, Any], None]

    def open(self, file: Writable) -> ShardWriter:
        """Returns a writer that appends framed records to ``file``."""
        return _RecordWriter(file, self.write_record)


class Counting:
    """A file that counts the bytes written through it (and says so as ``tell``)."""

    def __init__(self, file: Writable) -> None:
        self._file = file
        self.size = 0

    def write(self, data: bytes) -> int:
        """Appends ``data``; returns its length."""
        self._file.write(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        """The bytes written so far."""
        return self.size


class _RecordWriter:
    """Appends framed records; counts their bytes."""

    def __init__(self, file: Writable, write_record: Callable[[Writable, Any], None]) -> None:
        self._file = Counting(file)
        self._write_record = write_record

    def write(self, payload: Any) -> int:
        before = self._file.size
        self._write_record(self._file, payload)
        return self._file.size - before

    def end(self) -> None:
        """Nothing: framed records need no end."""


class _OpenPiece:
    """A piece being written, and how many bytes it holds."""

    def __init__(self, uri: str, format: ShardFormat) -> None:
        self.uri = uri
        self.file: BinaryIO = FileSystems.create(
            uri, compression_type=CompressionTypes.UNCOMPRESSED
        )
        self.writer = format.open(self.file)
        self.size = 0

    def write(self, payload: Any) -> None:
        self.size += self.writer.write(payload)

    def close(self) -> None:
        self.writer.end()
        self.file.close()


class _WritePiecesFn(beam.DoFn):
    """Streams a bundle's payloads into pieces; emits each piece once closed."""

    def __init__(
        self,
        temp_dir: str,
        prefix: Callable[[Any], str],
        format: ShardFormat,
        sharding: Sharding,
        prefixes: int,
    ) -> None:
        super().__init__()
        self._temp_dir = temp_dir
        self._prefix = prefix
        self._format = format
        self._sharding = sharding
        local = FileSystems.get_scheme(temp_dir) is None
        self._max_open = OPEN_LOCAL_FILES if local else OPEN_OBJECTS
        if format.buffer_bytes:
            self._max_open = max(1, min(self._max_open, FORMAT_BUFFERS // format.buffer_bytes))
        # Round robin payload by payload while every (prefix, shard) fits in
        # the open pieces; beyond, in blocks, so a piece gets BLOCK payloads
        # before it is closed to make room (not one).
        self._block = 1 if prefixes * (sharding.shards or 1) <= self._max_open else BLOCK

    def setup(self) -> None:
        _make_folder(self._temp_dir)

    def start_bundle(self) -> None:
        self._open: OrderedDict[tuple[str, int], _OpenPiece] = OrderedDict()  # oldest write first
        self._sent: dict[str, int] = {}  # payloads per prefix in this bundle
        self._start: dict[str, int] = {}  # where this bundle's round robin starts

    def process(self, pair: tuple[Any, Any]) -> Iterator[Piece]:
        prefix = self._prefix(pair)
        key = (prefix, self._shard(prefix))
        piece = self._open.get(key)
        if piece is None:
            if len(self._open) >= self._max_open:
                yield self._close(*self._open.popitem(last=False))
            piece = self._open[key] = _OpenPiece(
                f"{self._temp_dir}/{uuid.uuid4().hex}{self._format.suffix}", self._format
            )
        else:
            self._open.move_to_end(key)
        piece.write(pair[1])
        if self._sharding.max_bytes is not None and piece.size >= self._sharding.max_bytes:
            yield self._close(key, self._open.pop(key))

    def finish_bundle(self) -> Iterator[WindowedValue]:
        while self._open:
            yield GlobalWindows.windowed_value(self._close(*self._open.popitem(last=False)))

    def _shard(self, prefix: str) -> int:
        shards = self._sharding.shards
        if shards is None:
            return -1
        sent = self._sent.get(prefix, 0)
        self._sent[prefix] = sent + 1
        start = self._start.setdefault(prefix, random.randrange(shards))
        return (start + sent // self._block) % shards

    @staticmethod
    def _close(key: tuple[str, int], piece: _OpenPiece) -> Piece:
        piece.close()
        prefix, shard = key
        return prefix, (shard, piece.uri)


class _FinishPrefixFn(beam.DoFn):
    """Names a prefix's pieces ``-SSSSS-of-NNNNN`` (or joins them per shard); emits the files."""

    def __init__(self, root: str, format: ShardFormat, sharding: Sharding) -> None:
        super().__init__()
        self._root = root
        self._format = format
        self._shards = sharding.shards

    def process(self, element: tuple[str, Iterable[tuple[int, str] | None]]) -> Iterator[str]:
        prefix, values = element
        pieces = sorted(value for value in values if value is not None)
        by_shard: dict[int, list[str]] = defaultdict(list)
        if self._shards is None:  # a file per piece, in a stable order
            for index, (_, uri) in enumerate(pieces):
                by_shard[index].append(uri)
        else:
            for shard, uri in pieces:
                by_shard[shard].append(uri)
        total = self._shards or max(len(pieces), 1)
        suffix = self._format.suffix
        targets = [f"{self._root}/{shard_name(prefix, n, total, suffix)}" for n in range(total)]
        _make_folder(targets[0].rsplit("/", 1)[0])
        moves = [(by_shard[n][0], targets[n]) for n in range(total) if len(by_shard[n]) == 1]
        _move([source for source, _ in moves], [target for _, target in moves])
        for n in range(total):
            if len(by_shard[n]) != 1:
                _join(by_shard[n], targets[n], self._format)
        yield from targets


def _make_folder(uri: str) -> None:
    with contextlib.suppress(OSError):  # there already (object stores have no folders)
        FileSystems.mkdirs(uri)


def _move(sources: list[str], targets: list[str]) -> None:
    """Renames pieces to their files; a retried step finds them moved already."""
    if not sources:
        return
    try:
        FileSystems.rename(sources, targets)
    except BeamIOError:
        if any(
            FileSystems.exists(s) or not FileSystems.exists(t)
            for s, t in zip(sources, targets, strict=True)
        ):
            raise


def _join(pieces: list[str], target: str, format: ShardFormat) -> None:
    """Joins ``pieces`` into ``target`` (none: an empty file), then deletes them."""
    present = [FileSystems.exists(piece) for piece in pieces]
    if pieces and not any(present) and FileSystems.exists(target):
        return  # a retried step: joined and deleted already
    with FileSystems.create(target, compression_type=CompressionTypes.UNCOMPRESSED) as out:
        format.join(pieces, out)
    if pieces:
        FileSystems.delete(pieces)


def make_local_folders(root: str, prefixes: Sequence[str]) -> None:
    """Creates the folders the prefixes' files go into, when ``root`` is local."""
    if FileSystems.get_scheme(root) is not None:  # object stores have no folders
        return
    for prefix in prefixes:
        os.makedirs(os.path.dirname(f"{root}/{prefix}"), exist_ok=True)
