"""Streaming decompression with a size cap: gzip, bzip2, xz/lzma, zstd and deflate.

The format is read from the file's first bytes (``--compression=auto``) or
forced, and named with Beam's `CompressionTypes` values. Decompression is a
copy in chunks whose memory does not grow with the file: every read asks the
decompressor for at most one chunk of output, so a gzip bomb costs its
output's chunk, not its size, and the copy stops at ``max_decompressed_bytes``.

Why not Beam's own `CompressedFile`: it ends a truncated gzip, bzip2 or zstd
stream silently, as if the file were complete. The readers here raise on a
missing end-of-stream marker (Python's gzip, bz2 and lzma readers do; the
deflate and zstd readers below check the decompressor's ``eof``).

Beam's DEFLATE is a zlib stream (RFC 1950, two header bytes) and is detected
from that header; forcing ``deflate`` also accepts raw deflate (RFC 1951),
which has no header to detect.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from collections.abc import Callable, Iterator
from typing import Any, Final, NamedTuple, Protocol, cast

import apache_beam as beam
import attrs
import zstandard
from apache_beam.io.filesystem import CompressionTypes

from datathon_etl.framework.archives._source import GuardedSource, open_source
from datathon_etl.framework.archives.outputs import OutputWriteError, atomic_create
from datathon_etl.framework.quarantine import QUARANTINE_TAG, Quarantined, Reason, Stage

__all__ = [
    "AUTO",
    "BZIP2",
    "COMPRESSIONS",
    "DEFAULT_MAX_DECOMPRESSED_BYTES",
    "DEFLATE",
    "GZIP",
    "LZMA",
    "UNCOMPRESSED",
    "ZSTD",
    "CompressedFileError",
    "DecompressFiles",
    "DecompressJob",
    "DecompressResult",
    "DecompressedFile",
    "decompress_file",
    "detect_compression",
    "open_decompressed",
    "read_decompressed",
]

AUTO: Final[str] = CompressionTypes.AUTO
GZIP: Final[str] = CompressionTypes.GZIP
BZIP2: Final[str] = CompressionTypes.BZIP2
LZMA: Final[str] = CompressionTypes.LZMA
ZSTD: Final[str] = CompressionTypes.ZSTD
DEFLATE: Final[str] = CompressionTypes.DEFLATE
UNCOMPRESSED: Final[str] = CompressionTypes.UNCOMPRESSED

COMPRESSIONS: Final[tuple[str, ...]] = (GZIP, BZIP2, LZMA, ZSTD, DEFLATE)
"""The formats read here, by their `CompressionTypes` names (``lzma`` reads .xz too)."""

DEFAULT_MAX_DECOMPRESSED_BYTES: Final = 64 << 30

MAGIC_LENGTH: Final = 6
"""How many leading bytes `detect_compression` looks at."""

_CHUNK: Final = 1 << 20
_READ: Final = 1 << 16
# A zstd RLE block turns 4 input bytes into 128 KiB and zstd's decompressobj has
# no output limit, so it is fed 256 bytes at a time: at most 8 MiB out per call.
_ZSTD_SLICE: Final = 256


def detect_compression(head: bytes, *, zlib_header: bool = True) -> str | None:
    """Returns the `CompressionTypes` name the bytes ``head`` start, or None.

    Args:
        head: The first `MAGIC_LENGTH` (or more) bytes of a file.
        zlib_header: Whether to accept a two-byte zlib header as ``deflate``.
            It is a weak signature (1 in about 500 random starts pass), so
            callers that expect other formats (tar) turn it off.
    """
    if head.startswith(b"\x1f\x8b"):
        return GZIP
    if head.startswith(b"BZh"):
        return BZIP2
    if head.startswith(b"\xfd7zXZ\x00"):
        return LZMA
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return ZSTD
    if zlib_header and len(head) >= 2:
        cmf, flg = head[0], head[1]
        if cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf << 8 | flg) % 31 == 0:
            return DEFLATE
    return None


class CompressedFileError(Exception):
    """A compressed file that cannot be decompressed, with its quarantine reason."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class _Decoder(Protocol):
    @property
    def eof(self) -> bool: ...

    def feed(self, data: memoryview) -> tuple[bytes, memoryview]:
        """Returns (output, the input not consumed yet)."""
        ...


class _ZlibDecoder:
    def __init__(self, wbits: int) -> None:
        self._d = zlib.decompressobj(wbits)

    @property
    def eof(self) -> bool:
        return self._d.eof

    def feed(self, data: memoryview) -> tuple[bytes, memoryview]:
        out = self._d.decompress(data, _CHUNK)
        rest = self._d.unused_data if self._d.eof else self._d.unconsumed_tail
        return out, memoryview(rest)


class _ZstdDecoder:
    def __init__(self) -> None:
        # Beam's limit too: larger windows need that much memory to decode.
        self._d = zstandard.ZstdDecompressor(max_window_size=1 << 31).decompressobj()

    @property
    def eof(self) -> bool:
        return bool(self._d.eof)

    def feed(self, data: memoryview) -> tuple[bytes, memoryview]:
        out = self._d.decompress(data[:_ZSTD_SLICE])
        rest = data[_ZSTD_SLICE:]
        if self._d.eof and self._d.unused_data:
            rest = memoryview(self._d.unused_data + rest.tobytes())
        return out, rest


class _DecodingReader(io.RawIOBase):
    """Decodes concatenated streams; raises EOFError if the input stops mid-stream."""

    def __init__(self, source: io.RawIOBase, new_decoder: Callable[[], _Decoder]) -> None:
        super().__init__()
        self._source = source
        self._new_decoder = new_decoder
        self._decoder = new_decoder()
        self._input = memoryview(b"")
        self._output = b""
        self._position = 0
        self._in_stream = False
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        while self._position >= len(self._output):
            if self._done:
                return 0
            self._step()
        with memoryview(buffer) as view, view.cast("B") as target:
            n = min(len(target), len(self._output) - self._position)
            target[:n] = memoryview(self._output)[self._position : self._position + n]
        self._position += n
        return n

    def _step(self) -> None:
        if not self._input:
            data = self._source.read(_READ)
            if not data:
                if self._in_stream:
                    raise EOFError("compressed data ends before the end-of-stream marker")
                self._done = True
                return
            self._input = memoryview(data)
        if self._decoder.eof:
            self._decoder = self._new_decoder()  # a concatenated stream follows
        self._output = b""  # let the last output go before making the next
        self._output, self._input = self._decoder.feed(self._input)
        self._position = 0
        self._in_stream = not self._decoder.eof


def open_decompressed(source: io.RawIOBase, compression: str) -> io.BufferedIOBase:
    """Returns a reader of the decompressed bytes of ``source``.

    Each ``read(n)`` holds at most about ``n`` bytes of output (8 MiB for
    zstd), however well the input compresses. Errors surface on read:
    `EOFError` for a truncated stream; `OSError`, `zlib.error`,
    `lzma.LZMAError` or `zstandard.ZstdError` for corrupt data (see
    `read_decompressed`, which maps them all to `CompressedFileError`).

    Args:
        source: The compressed bytes (a `GuardedSource`, so that an I/O
            failure is a `SourceReadError`, not an `OSError`).
        compression: A name from `COMPRESSIONS`.
    """
    fileobj = cast(Any, source)
    if compression == GZIP:
        return gzip.GzipFile(fileobj=fileobj, mode="rb")
    if compression == BZIP2:
        return bz2.BZ2File(fileobj, mode="rb")
    if compression == LZMA:
        return lzma.LZMAFile(fileobj, mode="rb")
    if compression == ZSTD:
        return io.BufferedReader(_DecodingReader(source, _ZstdDecoder), _CHUNK)
    if compression == DEFLATE:
        return io.BufferedReader(_DeflateReader(source), _CHUNK)
    raise ValueError(f"unsupported compression {compression!r}; expected one of {COMPRESSIONS}")


class _DeflateReader(_DecodingReader):
    """zlib streams (RFC 1950), or raw deflate (RFC 1951) when there is no zlib header."""

    def __init__(self, source: io.RawIOBase) -> None:
        head = source.read(2) or b""
        wbits = zlib.MAX_WBITS if detect_compression(head) == DEFLATE else -15
        super().__init__(_Prefixed(source, head), lambda: _ZlibDecoder(wbits))


class _Prefixed(io.RawIOBase):
    def __init__(self, source: io.RawIOBase, prefix: bytes) -> None:
        super().__init__()
        self._source = source
        self._prefix = prefix

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._prefix:
            data, self._prefix = self._prefix, b""
            return data
        return self._source.read(size) or b""


_CORRUPT_ERRORS: Final = (OSError, zlib.error, lzma.LZMAError, zstandard.ZstdError)


def read_decompressed(reader: io.BufferedIOBase, size: int = _CHUNK) -> bytes:
    """One ``reader.read(size)``, with decoding errors as `CompressedFileError`.

    Raises:
        CompressedFileError: ``CORRUPT_COMPRESSED_FILE`` for truncated or
            corrupt data.
        SourceReadError: Reading the compressed file failed (not its data).
    """
    try:
        return reader.read(size)
    except EOFError as e:
        raise CompressedFileError(Reason.CORRUPT_COMPRESSED_FILE, f"truncated: {e}") from e
    except _CORRUPT_ERRORS as e:
        raise CompressedFileError(
            Reason.CORRUPT_COMPRESSED_FILE, f"corrupt: {type(e).__name__}: {e}"
        ) from e


@attrs.frozen
class DecompressJob:
    """One file to decompress: where it is and where its bytes go."""

    source: str
    destination: str


@attrs.frozen
class DecompressedFile:
    """One file decompressed: `DecompressFiles`' main output."""

    source: str
    destination: str
    compression: str
    bytes_written: int


def decompress_file(
    job: DecompressJob,
    *,
    temp_dir: str,
    compression: str = AUTO,
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
) -> DecompressedFile:
    """Decompresses ``job.source`` into ``job.destination``, in constant memory.

    The output is written under ``temp_dir`` and renamed into place at the
    end; on any failure the partial output is deleted.

    Args:
        job: The file and its destination.
        temp_dir: Scratch folder for the partial output (inside the output prefix).
        compression: `AUTO` (from the first bytes) or a name
            from `COMPRESSIONS`.
        max_decompressed_bytes: Larger outputs are refused.

    Raises:
        CompressedFileError: ``UNKNOWN_COMPRESSION``, ``CORRUPT_COMPRESSED_FILE``
            or ``DECOMPRESSED_TOO_LARGE``.
        OutputWriteError: Writing the output failed.
        SourceReadError: Reading the input failed.
    """
    with open_source(job.source) as handle:
        head = GuardedSource(handle, job.source).read(MAGIC_LENGTH) or b""
        found = detect_compression(head)
        if compression == AUTO:
            if found is None:
                raise CompressedFileError(
                    Reason.UNKNOWN_COMPRESSION,
                    f"first bytes {head.hex()} match none of {', '.join(COMPRESSIONS)}",
                )
            compression = found
        reader = open_decompressed(GuardedSource(handle, job.source, prefix=head), compression)
        with atomic_create(job.destination, temp_dir) as sink:
            while chunk := read_decompressed(reader):
                if sink.bytes_written + len(chunk) > max_decompressed_bytes:
                    raise CompressedFileError(
                        Reason.DECOMPRESSED_TOO_LARGE,
                        f"decompresses to more than {max_decompressed_bytes} bytes "
                        "(--max_decompressed_bytes); partial output removed",
                    )
                sink.write(chunk)
        return DecompressedFile(job.source, job.destination, compression, sink.bytes_written)


class DecompressResult(NamedTuple):
    """What `DecompressFiles` returns."""

    written: beam.PCollection[DecompressedFile]
    quarantine: beam.PCollection[Quarantined]


class _DecompressFn(beam.DoFn):
    def __init__(self, temp_dir: str, compression: str, max_decompressed_bytes: int) -> None:
        super().__init__()
        self._temp_dir = temp_dir
        self._compression = compression
        self._max = max_decompressed_bytes

    def process(self, job: DecompressJob) -> Iterator[Any]:
        try:
            yield decompress_file(
                job,
                temp_dir=self._temp_dir,
                compression=self._compression,
                max_decompressed_bytes=self._max,
            )
        except CompressedFileError as e:
            yield _quarantine(job, Stage.DECOMPRESS, e.reason, e.detail)
        except OutputWriteError as e:
            yield _quarantine(job, Stage.WRITE, Reason.WRITE_FAILED, str(e))


def _quarantine(job: DecompressJob, stage: Stage, reason: Reason, detail: str) -> Any:
    detail = f"{detail} (destination {job.destination})"
    record = Quarantined(
        path=job.source, stage=stage, reason=reason, detail=detail, source=job.source
    )
    return beam.pvalue.TaggedOutput(QUARANTINE_TAG, record)


class DecompressFiles(beam.PTransform[beam.PCollection[DecompressJob], DecompressResult]):
    """Decompresses each job's file to its destination; refusals go to quarantine.

    A truncated or corrupt file is ``CORRUPT_COMPRESSED_FILE``, an
    unrecognised one (with ``auto``) ``UNKNOWN_COMPRESSION``, one that
    decompresses past the cap ``DECOMPRESSED_TOO_LARGE`` (its partial output
    removed), all at `Stage.DECOMPRESS`; a failed write is ``WRITE_FAILED`` at
    `Stage.WRITE`. The other files finish. I/O failures reading an input are
    not quarantined: they fail the work item so that the runner retries it.

    Args:
        temp_dir: Scratch folder for partial outputs, inside the output prefix.
        compression: `AUTO` or a name from `COMPRESSIONS`.
        max_decompressed_bytes: The output size cap per file.
    """

    def __init__(
        self,
        *,
        temp_dir: str,
        compression: str = AUTO,
        max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
    ) -> None:
        super().__init__()
        if compression != AUTO and compression not in COMPRESSIONS:
            raise ValueError(f"unsupported compression {compression!r}")
        self._fn = _DecompressFn(temp_dir, compression, max_decompressed_bytes)

    def expand(self, jobs: beam.PCollection[DecompressJob]) -> DecompressResult:
        """Decompresses every job."""
        results = jobs | "Decompress" >> beam.ParDo(self._fn).with_outputs(
            QUARANTINE_TAG, main="written"
        )
        return DecompressResult(results.written, results[QUARANTINE_TAG])
