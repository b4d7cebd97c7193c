"""Reading tar archives safely and in parallel, even one huge archive.

Two paths, chosen per archive from its first bytes (never its extension):

* **Uncompressed** (random access): `scan_tar` reads only the headers, seeking
  past the data, and yields a `MemberRef` (archive, name, data offset, size)
  per member. Refs are small and picklable: they are what gets shuffled, so
  after ``IndexTars -> Reshuffle -> ReadMembers`` the bytes of one archive
  are read by byte range on every worker. A caller may also join refs with
  other data (labels) first and read the bytes after the join.
* **Compressed** (gzip, bzip2, xz, zstd: no random access): the archive is
  streamed once by one worker, and each member's bytes are yielded inline as
  a `LoadedMember`, to be processed right there (Beam fuses the next step),
  never shuffled; or, given a scratch folder, copied there in chunks as the
  stream goes by and yielded as a `StagedMember` (a name and a file), so
  that memory does not grow with a member's size.

`IndexTars` gives both as separate outputs (``refs`` and ``loaded``) plus
``quarantine`` and per-archive ``summaries``; `ReadTars` composes the whole
thing into one PCollection of `LoadedMember`; `ExtractMembers` writes members
under an output prefix.

Safety, in this order for each member (directories are skipped, not counted):
names that are absolute, contain ``..``, are empty or are not UTF-8 are
``UNSAFE_MEMBER_PATH``; symbolic and hard links ``LINK_MEMBER``; devices,
FIFOs, sparse and other non-regular members ``SPECIAL_MEMBER`` (these are
reported even when ``path_match_regex`` would have skipped them: an archive
that carries them deserves a look). Then members that do not match
``path_match_regex`` (a full match of the normalised name) are skipped and
counted; members over ``max_member_bytes`` are ``MEMBER_TOO_LARGE`` (from the
header, before any byte is read); a name
seen earlier in the same archive is ``DUPLICATE_OUTPUT_PATH`` (the first copy
wins). All at `Stage.UNTAR`, with ``archive#member`` as the source. A GNU
long-name or pax header over 1 MiB (tarfile would read it whole, whatever
its size) makes the archive ``CORRUPT_ARCHIVE``.

Damage: a truncated or corrupt archive yields the members read before the
damage and then one ``TRUNCATED_ARCHIVE`` or ``CORRUPT_ARCHIVE`` record whose
path and source are the archive, never an exception. A compressed stream's
checksum covers the whole stream and is checked at its end, so members
yielded before a checksum failure may carry the damage: the record says the
archive is corrupt, and how many members were read before. An archive must end
with its end-of-archive block: one that stops cleanly between members but
without it is counted as truncated (every tar writer emits it). I/O failures
are not damage: they propagate so that the runner retries the work.
"""

from __future__ import annotations

import io
import lzma
import re
import tarfile
import zlib
from collections.abc import Iterator
from typing import IO, Any, BinaryIO, Final, NamedTuple, Self, TypeAlias

import apache_beam as beam
import attrs
import zstandard

from datathon_etl.framework.archives._source import (
    ArchiveHandles,
    GuardedSource,
    open_source,
    read_exact,
    read_range,
)
from datathon_etl.framework.archives.decompress import (
    UNCOMPRESSED,
    detect_compression,
    open_decompressed,
)
from datathon_etl.framework.archives.outputs import (
    OutputWriteError,
    UnsafePathError,
    atomic_create,
    commit,
    output_path,
    printable,
    safe_relative_path,
    staged_file,
)
from datathon_etl.framework.quarantine import QUARANTINE_TAG, Quarantined, Reason, Stage

__all__ = [
    "ARCHIVE_REASONS",
    "DEFAULT_MAX_MEMBER_BYTES",
    "LOADED_TAG",
    "SUMMARY_TAG",
    "ArchiveSummary",
    "ExtractMembers",
    "ExtractResult",
    "IndexTars",
    "LoadedMember",
    "MemberRef",
    "ReadMembers",
    "ReadTars",
    "StagedMember",
    "TarContents",
    "TarIndex",
    "read_member",
    "scan_tar",
    "tar_compression",
]

DEFAULT_MAX_MEMBER_BYTES: Final = 2 << 30
LOADED_TAG: Final = "loaded"
SUMMARY_TAG: Final = "summary"
ARCHIVE_REASONS: Final = frozenset({Reason.TRUNCATED_ARCHIVE, Reason.CORRUPT_ARCHIVE})
"""Reasons of records about a whole archive (the others are about one member)."""

_HEAD: Final = 512
_DRAIN: Final = 1 << 20
_CHUNK: Final = 1 << 20
_MAX_EXTENDED_HEADER: Final = 1 << 20
"""Long names and pax headers are read whole by tarfile: a real one is a few KiB."""
_EXTENDED_HEADERS: Final = frozenset(
    {
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
    }
)
_STOP: Final = "_datathon_etl_stop"
# tarfile's header errors, public in the module but not in typeshed.
_EMPTY_HEADER: Final[type[Exception]] = vars(tarfile)["EmptyHeaderError"]
_TRUNCATED_HEADER: Final[type[Exception]] = vars(tarfile)["TruncatedHeaderError"]
_INVALID_HEADER: Final[type[Exception]] = vars(tarfile)["InvalidHeaderError"]


@attrs.frozen
class MemberRef:
    """Where one member's bytes lie in an uncompressed tar archive.

    Attributes:
        archive: The archive's URI.
        name: The member's normalised relative name (see `safe_relative_path`).
        offset: Where its data starts in the archive, in bytes.
        size: Its data's length, in bytes.
    """

    archive: str
    name: str
    offset: int
    size: int

    @property
    def source(self) -> str:
        """``archive#name``, as quarantine records name members."""
        return f"{self.archive}#{self.name}"


@attrs.frozen
class LoadedMember:
    """One member with its bytes: from a compressed archive, or a `MemberRef` read."""

    archive: str
    name: str
    data: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>")

    @property
    def source(self) -> str:
        """``archive#name``, as quarantine records name members."""
        return f"{self.archive}#{self.name}"


@attrs.frozen
class StagedMember:
    """A member's bytes written to a scratch file, not yet moved to its output name.

    Lets members of compressed archives join refs in `UniqueOutputs` (a
    shuffle of names, not bytes) before anything is committed.
    """

    archive: str
    name: str
    staged: str
    size: int

    @property
    def source(self) -> str:
        """``archive#name``, as quarantine records name members."""
        return f"{self.archive}#{self.name}"


@attrs.frozen
class ArchiveSummary:
    """What reading one archive found.

    Attributes:
        archive: The archive's URI.
        compression: ``uncompressed`` or a `CompressionTypes` name.
        members: Members seen (directories excluded), up to any damage.
        skipped: Of those, members that did not match ``path_match_regex``.
        complete: Whether it was read to its end without damage.
    """

    archive: str
    compression: str
    members: int
    skipped: int
    complete: bool


TarItem: TypeAlias = MemberRef | LoadedMember | StagedMember | Quarantined | ArchiveSummary
"""What `scan_tar` yields."""


def tar_compression(head: bytes) -> str:
    """Returns how an archive starting with ``head`` (512 bytes) is compressed.

    A POSIX/GNU header (``ustar`` at byte 257) means uncompressed, whatever
    its first bytes look like; otherwise gzip, bzip2, xz or zstd magic bytes;
    otherwise uncompressed (old V7 tars have no magic), left to the tar
    reader to accept or refuse.
    """
    if head[257:262] == b"ustar":
        return UNCOMPRESSED
    return detect_compression(head, zlib_header=False) or UNCOMPRESSED


class _Damage(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class _RecordingTarInfo(tarfile.TarInfo):
    """Remembers why tarfile stopped: it ends iteration silently on a bad header.

    Also refuses a long-name or pax header larger than `_MAX_EXTENDED_HEADER`
    before tarfile reads it into memory (a 1 MB gzip can hold a 1 GiB one).
    """

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self:
        info = super().frombuf(buf, encoding, errors)
        if info.type in _EXTENDED_HEADERS and info.size > _MAX_EXTENDED_HEADER:
            raise _Damage(
                Reason.CORRUPT_ARCHIVE,
                f"a {info.size}-byte extended header (type {info.type!r}); "
                f"real ones are under {_MAX_EXTENDED_HEADER} bytes",
            )
        return info

    @classmethod
    def fromtarfile(cls, tar: tarfile.TarFile) -> Self:
        try:
            return super().fromtarfile(tar)
        except tarfile.HeaderError as e:
            setattr(tar, _STOP, e)
            raise


def _check_end(tar: tarfile.TarFile) -> None:
    stop = getattr(tar, _STOP, None)
    if isinstance(stop, _EMPTY_HEADER):
        raise _Damage(Reason.TRUNCATED_ARCHIVE, "ends without its end-of-archive block")
    if isinstance(stop, _TRUNCATED_HEADER):
        raise _Damage(Reason.TRUNCATED_ARCHIVE, f"ends inside a header at byte {tar.offset}")
    if isinstance(stop, _INVALID_HEADER):
        raise _Damage(Reason.CORRUPT_ARCHIVE, f"bad header at byte {tar.offset}: {stop}")


# What reading damaged data can raise; SourceReadError (I/O) is none of these.
_DATA_ERRORS: Final = (
    tarfile.TarError,
    EOFError,
    OSError,
    ValueError,
    zlib.error,
    lzma.LZMAError,
    zstandard.ZstdError,
)


def _classify(error: BaseException) -> _Damage:
    message = f"{type(error).__name__}: {error}"
    if isinstance(error, EOFError) or "unexpected end of data" in str(error):
        return _Damage(Reason.TRUNCATED_ARCHIVE, message)
    return _Damage(Reason.CORRUPT_ARCHIVE, message)


def _kind(info: tarfile.TarInfo) -> str:
    if info.isfifo():
        return "FIFO"
    if info.ischr():
        return "character device"
    if info.isblk():
        return "block device"
    if info.issparse():
        return "sparse file"
    return f"member of type {info.type!r}"


class _Rules:
    """Judges members in archive order and counts them."""

    def __init__(self, archive: str, path_match_regex: str | None, max_member_bytes: int) -> None:
        self._archive = archive
        self._pattern = re.compile(path_match_regex) if path_match_regex is not None else None
        self._max = max_member_bytes
        self._names: set[str] = set()
        self.members = 0
        self.skipped = 0

    def judge(self, info: tarfile.TarInfo) -> str | Quarantined | None:
        """Returns the name to read the member under, a refusal, or None to pass it by."""
        if info.isdir():
            return None
        self.members += 1
        shown = printable(info.name)

        def refuse(reason: Reason, detail: str) -> Quarantined:
            source = f"{self._archive}#{shown}"
            return Quarantined(shown, Stage.UNTAR, reason, detail, source)

        try:
            name = safe_relative_path(info.name)
        except UnsafePathError as e:
            return refuse(Reason.UNSAFE_MEMBER_PATH, str(e))
        if info.issym() or info.islnk():
            kind = "symbolic" if info.issym() else "hard"
            return refuse(Reason.LINK_MEMBER, f"{kind} link to {printable(info.linkname)!r}")
        if not info.isreg() or info.issparse():
            return refuse(Reason.SPECIAL_MEMBER, _kind(info))
        if self._pattern is not None and not self._pattern.fullmatch(name):
            self.skipped += 1
            return None
        if info.size > self._max:
            return refuse(
                Reason.MEMBER_TOO_LARGE,
                f"{info.size} bytes > {self._max} (--max_member_bytes)",
            )
        if name in self._names:
            return refuse(
                Reason.DUPLICATE_OUTPUT_PATH,
                "the name occurs earlier in this archive; the first copy is kept",
            )
        self._names.add(name)
        return name


def _forget_members(tar: tarfile.TarFile) -> None:
    # tarfile keeps every header it read; memory would grow with the archive.
    members: list[tarfile.TarInfo] = vars(tar)["members"]
    members.clear()


def _read_head(source: GuardedSource) -> bytes:
    head = b""
    while len(head) < _HEAD and (data := source.read(_HEAD - len(head))):
        head += data
    return head


def _scan_seekable(archive: str, source: GuardedSource, rules: _Rules) -> Iterator[TarItem]:
    size = source.seek(0, io.SEEK_END)
    source.seek(0)
    with tarfile.open(fileobj=source, mode="r:", tarinfo=_RecordingTarInfo) as tar:
        while (info := tar.next()) is not None:
            _forget_members(tar)
            end = info.offset_data + info.size
            if info.isreg() and not info.issparse() and end > size:
                raise _Damage(
                    Reason.TRUNCATED_ARCHIVE,
                    f"member {printable(info.name)!r} needs bytes up to {end}; "
                    f"the archive has {size}",
                )
            verdict = rules.judge(info)
            if isinstance(verdict, str):
                yield MemberRef(archive, verdict, info.offset_data, info.size)
            elif verdict is not None:
                yield verdict
        _check_end(tar)


def _scan_stream(
    archive: str,
    source: GuardedSource,
    compression: str,
    rules: _Rules,
    stage_dir: str | None,
) -> Iterator[TarItem]:
    reader: Any = source if compression == UNCOMPRESSED else open_decompressed(source, compression)
    with tarfile.open(fileobj=reader, mode="r|", tarinfo=_RecordingTarInfo) as tar:
        while (info := tar.next()) is not None:
            _forget_members(tar)
            verdict = rules.judge(info)
            if isinstance(verdict, str):
                member = tar.extractfile(info)
                if stage_dir is None:
                    yield _load(archive, verdict, member, info.size)
                else:
                    yield _stage(archive, verdict, member, info.size, stage_dir)
            elif verdict is not None:
                yield verdict
        _check_end(tar)
    # The stream's checksum (gzip's CRC, xz's check) is verified at its very end.
    while reader.read(_DRAIN):
        pass


def _chunks(member: IO[bytes] | None, name: str, size: int) -> Iterator[bytes]:
    """A streamed member's bytes in chunks: one read of the whole would hold copies."""
    left = size
    while left and member is not None and (data := member.read(min(left, _CHUNK))):
        left -= len(data)
        yield data
    if left:
        raise _Damage(
            Reason.TRUNCATED_ARCHIVE, f"member {name!r} has {size - left} of its {size} bytes"
        )


def _load(archive: str, name: str, member: IO[bytes] | None, size: int) -> LoadedMember:
    # The chunks and their join: at most twice the member at once.
    return LoadedMember(archive, name, b"".join(_chunks(member, name, size)))


def _stage(
    archive: str, name: str, member: IO[bytes] | None, size: int, stage_dir: str
) -> StagedMember | Quarantined:
    """Copies a member to a scratch file in chunks: memory does not grow with its size."""
    try:
        with staged_file(stage_dir) as sink:
            for chunk in _chunks(member, name, size):
                sink.write(chunk)
    except OutputWriteError as e:
        # The rest of the member is skipped by tarfile's next().
        source = f"{archive}#{name}"
        return Quarantined(name, Stage.WRITE, Reason.WRITE_FAILED, str(e), source)
    return StagedMember(archive, name, sink.uri, sink.bytes_written)


def scan_tar(
    archive: str,
    *,
    path_match_regex: str | None = None,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
    stage_dir: str | None = None,
) -> Iterator[TarItem]:
    """Reads one archive: refs or loaded members, refusals, then its summary.

    Yields `MemberRef` for an uncompressed (seekable) archive; for a
    compressed one, `LoadedMember` (its bytes in memory: at most twice a
    member at once), or with ``stage_dir`` a `StagedMember` (its bytes copied
    to a scratch file in chunks: memory does not grow with the member);
    `Quarantined` for refused members and at most one for damage, and last an
    `ArchiveSummary`. See the module docstring for the rules.

    Raises:
        SourceReadError: Reading the archive failed (not its contents).
    """
    rules = _Rules(archive, path_match_regex, max_member_bytes)
    damage: _Damage | None = None
    with open_source(archive) as handle:
        guarded = GuardedSource(handle, archive)
        head = _read_head(guarded)
        compression = tar_compression(head)
        try:
            if compression == UNCOMPRESSED and guarded.seekable():
                yield from _scan_seekable(archive, guarded, rules)
            else:
                prefixed = GuardedSource(handle, archive, prefix=head)
                yield from _scan_stream(archive, prefixed, compression, rules, stage_dir)
        except _DATA_ERRORS as e:
            damage = _classify(e)
        except _Damage as e:
            damage = e
    if damage is not None:
        yield Quarantined(
            path=archive,
            stage=Stage.UNTAR,
            reason=damage.reason,
            detail=f"{damage.detail} ({rules.members} members read before the damage)",
            source=archive,
        )
    yield ArchiveSummary(archive, compression, rules.members, rules.skipped, damage is None)


def read_member(ref: MemberRef, handle: BinaryIO | None = None) -> bytes:
    """Returns a member's bytes, read by range from its archive.

    Args:
        ref: The member.
        handle: An open handle on ``ref.archive`` to reuse, if any.

    Raises:
        ArchiveChangedError: The archive is shorter than the ref says.
        SourceReadError: Reading failed.
    """
    if handle is not None:
        return read_exact(handle, ref.archive, ref.offset, ref.size)
    with open_source(ref.archive) as opened:
        return read_exact(opened, ref.archive, ref.offset, ref.size)


class TarIndex(NamedTuple):
    """What `IndexTars` returns."""

    refs: beam.PCollection[MemberRef]
    """Members of uncompressed archives, to read by range (`ReadMembers`)."""
    loaded: beam.PCollection[LoadedMember | StagedMember]
    """Members of compressed archives, bytes included (process them in place),
    or staged to scratch files (with ``stage_dir``)."""
    quarantine: beam.PCollection[Quarantined]
    """Refused members and damaged archives."""
    summaries: beam.PCollection[ArchiveSummary]
    """One per archive."""


class _IndexTarFn(beam.DoFn):
    def __init__(
        self, path_match_regex: str | None, max_member_bytes: int, stage_dir: str | None
    ) -> None:
        super().__init__()
        self._path_match_regex = path_match_regex
        self._max_member_bytes = max_member_bytes
        self._stage_dir = stage_dir

    def process(self, archive: str) -> Iterator[Any]:
        items = scan_tar(
            archive,
            path_match_regex=self._path_match_regex,
            max_member_bytes=self._max_member_bytes,
            stage_dir=self._stage_dir,
        )
        for item in items:
            if isinstance(item, MemberRef):
                yield item
            elif isinstance(item, LoadedMember | StagedMember):
                yield beam.pvalue.TaggedOutput(LOADED_TAG, item)
            elif isinstance(item, Quarantined):
                yield beam.pvalue.TaggedOutput(QUARANTINE_TAG, item)
            else:
                yield beam.pvalue.TaggedOutput(SUMMARY_TAG, item)


class IndexTars(beam.PTransform[beam.PCollection[str], TarIndex]):
    """Archive URIs -> member refs (uncompressed) or loaded members (compressed).

    The URIs are reshuffled first so that several archives are read at once.

    Args:
        path_match_regex: Only members whose normalised name fully matches
            are read; the others are counted in the summaries as skipped.
        max_member_bytes: Larger members are refused (``MEMBER_TOO_LARGE``).
        stage_dir: If given, members of compressed archives are copied to
            scratch files there (`StagedMember`) instead of loaded in memory.
    """

    def __init__(
        self,
        *,
        path_match_regex: str | None = None,
        max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
        stage_dir: str | None = None,
    ) -> None:
        super().__init__()
        if path_match_regex is not None:
            re.compile(path_match_regex)  # fail at construction, not on a worker
        self._fn = _IndexTarFn(path_match_regex, max_member_bytes, stage_dir)

    def expand(self, archives: beam.PCollection[str]) -> TarIndex:
        """Scans every archive."""
        results = (
            archives
            | "SpreadArchives" >> beam.Reshuffle()
            | "Scan"
            >> beam.ParDo(self._fn).with_outputs(
                LOADED_TAG, QUARANTINE_TAG, SUMMARY_TAG, main="refs"
            )
        )
        return TarIndex(
            results.refs, results[LOADED_TAG], results[QUARANTINE_TAG], results[SUMMARY_TAG]
        )


class _ReadMemberFn(beam.DoFn):
    def setup(self) -> None:
        self._handles = ArchiveHandles()

    def process(self, ref: MemberRef) -> Iterator[LoadedMember]:
        yield LoadedMember(ref.archive, ref.name, read_member(ref, self._handles.get(ref.archive)))

    def finish_bundle(self) -> None:
        self._handles.close()

    def teardown(self) -> None:
        self._handles.close()


class ReadMembers(beam.PTransform[beam.PCollection[MemberRef], beam.PCollection[LoadedMember]]):
    """Reads each ref's bytes by range (open, seek, read) on whichever worker has it.

    Shuffle the refs (or join them with other data) before this step so the
    reads spread over workers. A short read fails the work item (the archive
    changed after it was indexed): it is not data damage.
    """

    def expand(self, refs: beam.PCollection[MemberRef]) -> beam.PCollection[LoadedMember]:
        """Reads every ref."""
        return refs | "ReadByRange" >> beam.ParDo(_ReadMemberFn())


class TarContents(NamedTuple):
    """What `ReadTars` returns."""

    members: beam.PCollection[LoadedMember]
    quarantine: beam.PCollection[Quarantined]
    summaries: beam.PCollection[ArchiveSummary]


class ReadTars(beam.PTransform[beam.PCollection[str], TarContents]):
    """Archive URIs -> every accepted member with its bytes, spread over workers.

    ``IndexTars -> Reshuffle(refs) -> ReadMembers``, flattened with the
    members of compressed archives. Arguments as for `IndexTars`.
    """

    def __init__(
        self,
        *,
        path_match_regex: str | None = None,
        max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
    ) -> None:
        super().__init__()
        self._index = IndexTars(
            path_match_regex=path_match_regex, max_member_bytes=max_member_bytes
        )

    def expand(self, archives: beam.PCollection[str]) -> TarContents:
        """Indexes, spreads the refs, reads them."""
        index = archives | "Index" >> self._index
        read = index.refs | "SpreadRefs" >> beam.Reshuffle() | "Read" >> ReadMembers()
        members = (read, index.loaded) | "Members" >> beam.Flatten()
        return TarContents(members, index.quarantine, index.summaries)


class ExtractResult(NamedTuple):
    """What `ExtractMembers` returns."""

    written: beam.PCollection[str]
    """The URI of each file written."""
    quarantine: beam.PCollection[Quarantined]
    """Members whose file could not be written (``WRITE_FAILED``)."""


class _ExtractFn(beam.DoFn):
    def __init__(self, output_dir: str, temp_dir: str) -> None:
        super().__init__()
        self._output_dir = output_dir
        self._temp_dir = temp_dir

    def setup(self) -> None:
        self._handles = ArchiveHandles()

    def process(self, member: MemberRef | LoadedMember | StagedMember) -> Iterator[Any]:
        destination = output_path(self._output_dir, member.name)
        try:
            if isinstance(member, StagedMember):
                commit(member.staged, destination)
            else:
                with atomic_create(destination, self._temp_dir) as sink:
                    if isinstance(member, LoadedMember):
                        sink.write(member.data)
                    else:
                        handle = self._handles.get(member.archive)
                        for chunk in read_range(handle, member.archive, member.offset, member.size):
                            sink.write(chunk)
        except OutputWriteError as e:
            record = Quarantined(
                member.name, Stage.WRITE, Reason.WRITE_FAILED, str(e), member.source
            )
            yield beam.pvalue.TaggedOutput(QUARANTINE_TAG, record)
        else:
            yield destination

    def finish_bundle(self) -> None:
        self._handles.close()

    def teardown(self) -> None:
        self._handles.close()


class ExtractMembers(beam.PTransform[beam.PCollection[Any], ExtractResult]):
    """Writes members under ``output_dir`` at their names.

    Accepts `MemberRef` (copied by range in chunks: constant memory whatever
    the size), `LoadedMember` (written from its bytes) and `StagedMember`
    (renamed into place). Each file is written under ``temp_dir`` and renamed
    into place (`atomic_create`), so a failed write never looks complete.
    Names were made safe by `scan_tar`; they are checked again before joining.

    Args:
        output_dir: The output prefix (local path or ``gs://``).
        temp_dir: Scratch folder for partial files, inside ``output_dir``.
    """

    def __init__(self, *, output_dir: str, temp_dir: str) -> None:
        super().__init__()
        self._fn = _ExtractFn(output_dir, temp_dir)

    def expand(self, members: beam.PCollection[Any]) -> ExtractResult:
        """Writes every member."""
        results = members | "Extract" >> beam.ParDo(self._fn).with_outputs(
            QUARANTINE_TAG, main="written"
        )
        return ExtractResult(results.written, results[QUARANTINE_TAG])
