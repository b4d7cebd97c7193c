"""Which inputs are regular files: FIFOs, devices and links to them are never opened.

Opening a FIFO for reading blocks until a writer comes (for ever, in a
pipeline), and a device such as ``/dev/zero`` never ends; a listing reports
both with a size of 0, so no size cap stops them. So every local input is
looked at with ``stat`` (which follows links but opens nothing) before it is
read, and `read_regular_file` checks again what it opened (without blocking),
so a file swapped for a FIFO in between cannot hang a run. Object stores
(``gs://``) hold only regular objects.
"""

from __future__ import annotations

import os
import stat
from urllib.parse import urlparse

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

__all__ = ["NotARegularFileError", "check_regular_file", "irregular_kind", "read_regular_file"]

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotARegularFileError(OSError):
    """A local input is a FIFO, a device, a socket or a folder (or a link to one)."""


def _local_path(uri: str) -> str | None:
    """The local path of ``uri``, or None for a remote one (``gs://...``)."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return parsed.path
    # A one-letter scheme is a Windows drive, not a file system.
    return uri if len(parsed.scheme) <= 1 else None


def irregular_kind(uri: str) -> str | None:
    """Says what ``uri`` is when it is not a regular file, without opening it.

    Args:
        uri: A local path, a ``file://`` URI or a remote URI.

    Returns:
        None for a regular file (or a link to one), a missing local file (its
        reader reports that) and any remote object; otherwise a phrase such as
        ``"a FIFO (named pipe), not a regular file"`` or ``"a symbolic link to
        a character device, not a regular file"``.
    """
    path = _local_path(uri)
    if path is None:
        return None
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _KINDS if test(mode)), "a special file")
    if os.path.islink(path):
        kind = f"a symbolic link to {kind}"
    return f"{kind}, not a regular file"


def check_regular_file(uri: str) -> None:
    """Raises `NotARegularFileError` if ``uri`` is a local non-regular file.

    Raises:
        NotARegularFileError: Its message names the file and what it is.
    """
    kind = irregular_kind(uri)
    if kind is not None:
        raise NotARegularFileError(f"{uri} is {kind}")


def read_regular_file(uri: str) -> bytes:
    """Reads a whole file, refusing a local one that is not regular by what was opened.

    A local file is opened without blocking and checked on the open
    descriptor, so a file replaced by a FIFO after it was listed cannot hang
    the read (and a link to ``/dev/zero`` is not read). Remote objects are
    read through Beam's filesystems.

    Raises:
        NotARegularFileError: A local input that is not a regular file.
    """
    path = _local_path(uri)
    if path is None:
        with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            data: bytes = f.read()
        return data
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(descriptor, "rb") as f:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "a special file")
            raise NotARegularFileError(f"{uri} is {kind}, not a regular file")
        return f.read()
