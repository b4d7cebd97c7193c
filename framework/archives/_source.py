"""Reading inputs through Beam's FileSystems, with I/O failures kept apart.

A decompressor or tarfile raises `OSError` both for bad data (bzip2's
"Invalid data stream", gzip's `BadGzipFile`) and, through the file it reads,
for a failing disk or network. Wrapping the input turns the latter into
`SourceReadError`, which is not an `OSError`: whatever still surfaces as an
`OSError` is then about the data and can be quarantined, while an I/O failure
propagates and lets the runner retry the work.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import BinaryIO, TypeVar

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from datathon_etl.framework.sources.regular_files import check_regular_file

__all__ = [
    "ArchiveChangedError",
    "ArchiveHandles",
    "GuardedSource",
    "SourceReadError",
    "open_source",
    "read_exact",
    "read_range",
]

_CHUNK = 1 << 20
_T = TypeVar("_T")


class SourceReadError(Exception):
    """Reading an input failed for a reason other than its contents."""


class ArchiveChangedError(Exception):
    """An archive no longer holds the bytes its index promised."""


class GuardedSource(io.RawIOBase):
    """A read-only view of a file that reports I/O failures as `SourceReadError`.

    Args:
        handle: The file, as returned by `FileSystems.open`.
        uri: Its location, for error messages.
        prefix: Bytes already read from ``handle`` (to sniff a format) that
            are returned first; a guarded source with a prefix cannot seek.
    """

    def __init__(self, handle: BinaryIO, uri: str, prefix: bytes = b"") -> None:
        super().__init__()
        self._handle = handle
        self._uri = uri
        self._prefix = prefix

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return not self._prefix and self._handle.seekable()

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        with memoryview(buffer) as view, view.cast("B") as target:
            if self._prefix:
                n = min(len(target), len(self._prefix))
                target[:n] = self._prefix[:n]
                self._prefix = self._prefix[n:]
                return n
            data = self._call(lambda: self._handle.read(len(target)))
            target[: len(data)] = data
            return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if self._prefix:
            raise io.UnsupportedOperation("seek after a sniffed prefix")
        return self._call(lambda: self._handle.seek(offset, whence))

    def tell(self) -> int:
        if self._prefix:
            raise io.UnsupportedOperation("tell after a sniffed prefix")
        return self._call(self._handle.tell)

    def close(self) -> None:
        # The caller owns the handle; closing the view leaves it open.
        super().close()

    def _call(self, operation: Callable[[], _T]) -> _T:
        try:
            return operation()
        except OSError as e:
            raise SourceReadError(f"{self._uri}: {e}") from e


def open_source(uri: str) -> BinaryIO:
    """Opens ``uri`` for reading its raw bytes (never decompressed by extension).

    A FIFO or a device is refused unopened (commands refuse them at start-up;
    this covers one that replaced a file since).
    """
    try:
        check_regular_file(uri)
        handle: BinaryIO = FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED)
    except OSError as e:
        raise SourceReadError(f"{uri}: {e}") from e
    return handle


def read_range(
    handle: BinaryIO, uri: str, offset: int, size: int, chunk_size: int = _CHUNK
) -> Iterator[bytes]:
    """Yields ``size`` bytes of ``handle`` from ``offset`` on, in chunks.

    Raises:
        ArchiveChangedError: The file ends before ``offset + size``.
        SourceReadError: Reading failed.
    """
    source = GuardedSource(handle, uri)
    source.seek(offset)
    left = size
    while left:
        # The handle's own read: through the RawIOBase view it would be copied twice more.
        data = source._call(lambda: handle.read(min(left, chunk_size)))  # noqa: B023 (called now)
        if not data:
            raise ArchiveChangedError(
                f"{uri}: ends {left} bytes short of byte {offset + size}; "
                "was it modified after it was indexed?"
            )
        left -= len(data)
        yield data


def read_exact(handle: BinaryIO, uri: str, offset: int, size: int) -> bytes:
    """Returns the ``size`` bytes of ``handle`` from ``offset`` on, as one object.

    For a whole member wanted in memory: one chunk, so one read where the
    handle allows (no joined chunks at twice the size).

    Raises:
        ArchiveChangedError: The file ends before ``offset + size``.
        SourceReadError: Reading failed.
    """
    parts = list(read_range(handle, uri, offset, size, chunk_size=size))
    return parts[0] if len(parts) == 1 else b"".join(parts)


class ArchiveHandles:
    """Open read handles, one per archive, reused while a bundle lasts.

    Refs that come out of a shuffle arrive in any order, so a few archives are
    kept open at once; the least recently used one is closed beyond
    ``capacity``.
    """

    def __init__(self, capacity: int = 4) -> None:
        self._capacity = capacity
        self._handles: dict[str, BinaryIO] = {}

    def get(self, uri: str) -> BinaryIO:
        """Returns an open handle on ``uri``."""
        handle = self._handles.pop(uri, None)
        if handle is None:
            handle = open_source(uri)
            while len(self._handles) >= self._capacity:
                oldest = next(iter(self._handles))
                self._handles.pop(oldest).close()
        self._handles[uri] = handle  # most recently used last
        return handle

    def close(self) -> None:
        """Closes every handle."""
        while self._handles:
            _, handle = self._handles.popitem()
            handle.close()
