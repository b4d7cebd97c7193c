"""Tar reading: safe names, refs read by byte range, streamed compressed archives, damage."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import tarfile
import tracemalloc
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
import zstandard
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from datathon_etl.framework.archives import (
    ArchiveChangedError,
    ArchiveSummary,
    IndexTars,
    LoadedMember,
    MemberRef,
    OutputWriteError,
    ReadTars,
    StagedMember,
    UnsafePathError,
    atomic_create,
    output_path,
    read_member,
    safe_relative_path,
    scan_tar,
    tar_compression,
)
from datathon_etl.framework.quarantine import Quarantined, Reason, Stage

FILES = {
    "top.txt": b"top level\n",
    "a/b/c.bin": os.urandom(3000),
    "a/d.txt": b"nested " * 100,
    "empty.dat": b"",
}


def add(tar: tarfile.TarFile, name: str, data: bytes | None = None, **fields: object) -> None:
    info = tarfile.TarInfo(name)
    for key, value in fields.items():
        setattr(info, key, value)
    if data is not None:
        info.size = len(data)
    tar.addfile(info, io.BytesIO(data) if data is not None else None)


def add_hostile(tar: tarfile.TarFile) -> None:
    add(tar, "../evil.txt", b"escape")
    add(tar, "/abs.txt", b"absolute")
    add(tar, "a/../../up.txt", b"escape")
    add(tar, "link", type=tarfile.SYMTYPE, linkname="/etc/passwd")
    add(tar, "hard", type=tarfile.LNKTYPE, linkname="top.txt")
    add(tar, "pipe", type=tarfile.FIFOTYPE)
    add(tar, "tty", type=tarfile.CHRTYPE, devmajor=4, devminor=1)


HOSTILE = {
    "../evil.txt": Reason.UNSAFE_MEMBER_PATH,
    "/abs.txt": Reason.UNSAFE_MEMBER_PATH,
    "a/../../up.txt": Reason.UNSAFE_MEMBER_PATH,
    "link": Reason.LINK_MEMBER,
    "hard": Reason.LINK_MEMBER,
    "pipe": Reason.SPECIAL_MEMBER,
    "tty": Reason.SPECIAL_MEMBER,
}


def build_tar(path: Path, files: dict[str, bytes], mode: Any = "w", hostile: bool = False) -> str:
    """Writes a tar (dirs first, like real tools) and returns its path."""
    with tarfile.open(path, mode) as tar:
        add(tar, "a", type=tarfile.DIRTYPE)
        add(tar, "a/b", type=tarfile.DIRTYPE)
        for name, data in files.items():
            add(tar, name, data)
        if hostile:
            add_hostile(tar)
    return str(path)


def build_zstd_tar(path: Path, files: dict[str, bytes]) -> str:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            add(tar, name, data)
    path.write_bytes(zstandard.ZstdCompressor().compress(raw.getvalue()))
    return str(path)


def split(items: list[Any]) -> tuple[list[Any], list[Quarantined], ArchiveSummary]:
    *members, summary = items
    assert isinstance(summary, ArchiveSummary)
    records = [m for m in members if isinstance(m, Quarantined)]
    others = [m for m in members if not isinstance(m, Quarantined)]
    return others, records, summary


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a/b.jpg", "a/b.jpg"),
        ("./a//./b.jpg", "a/b.jpg"),
        ("a/b/", "a/b"),
        ("..a/b..", "..a/b.."),
        ("../x", None),
        ("a/../../x", None),
        ("a/..", None),
        ("..\\x", None),
        ("/etc/passwd", None),
        ("\\x", None),
        ("C:x", None),
        (".", None),
        ("", None),
        ("a\x00b", None),
        ("bad\udcff", None),
    ],
)
def test_safe_relative_path(name: str, expected: str | None) -> None:
    """Names normalise to relative POSIX paths; anything that could escape is refused."""
    if expected is None:
        with pytest.raises(UnsafePathError):
            safe_relative_path(name)
    else:
        assert safe_relative_path(name) == expected


def test_output_path_refuses_unnormalised_names() -> None:
    """Joining is only for names that went through safe_relative_path."""
    assert output_path("gs://b/out/", "a/b.jpg") == "gs://b/out/a/b.jpg"
    with pytest.raises(UnsafePathError):
        output_path("/out", "../x")
    with pytest.raises(UnsafePathError):
        output_path("/out", "a//b")


def test_uncompressed_tar_is_indexed_into_byte_ranges(tmp_path: Path) -> None:
    """An uncompressed tar yields refs whose ranges hold exactly the members' bytes."""
    archive = build_tar(tmp_path / "x.tar", FILES)
    with tarfile.open(archive) as tar:
        expected = [
            MemberRef(archive, m.name, m.offset_data, m.size) for m in tar.getmembers() if m.isreg()
        ]

    refs, records, summary = split(list(scan_tar(archive)))

    assert refs == expected
    assert records == []
    assert summary == ArchiveSummary(archive, "uncompressed", 4, 0, complete=True)
    raw = Path(archive).read_bytes()
    for ref in expected:
        assert raw[ref.offset : ref.offset + ref.size] == FILES[ref.name]
        assert read_member(ref) == FILES[ref.name]


def test_member_of_a_shortened_tar_is_an_error_not_short_bytes(tmp_path: Path) -> None:
    """A tar cut after indexing: reading a member past the end names the archive."""
    archive = build_tar(tmp_path / "x.tar", FILES)
    refs, _, _ = split(list(scan_tar(archive)))
    cut = max(refs, key=lambda ref: ref.size)
    assert cut.size > 1
    with open(archive, "r+b") as f:
        f.truncate(cut.offset + cut.size // 2)

    with pytest.raises(ArchiveChangedError, match="was it modified after it was indexed"):
        read_member(cut)
    with open(archive, "rb") as handle, pytest.raises(ArchiveChangedError, match=r"x\.tar: ends"):
        read_member(cut, handle)
    whole = [ref for ref in refs if ref.offset + ref.size <= cut.offset]
    assert whole
    for ref in whole:
        assert read_member(ref) == FILES[ref.name]


@pytest.mark.parametrize(
    ("mode", "compression"), [("w:gz", "gzip"), ("w:bz2", "bzip2"), ("w:xz", "lzma")]
)
def test_compressed_tar_streams_loaded_members(tmp_path: Path, mode: str, compression: str) -> None:
    """A compressed tar (found by magic bytes, not name) yields members with their bytes."""
    archive = build_tar(tmp_path / "archive.bin", FILES, mode)

    loaded, records, summary = split(list(scan_tar(archive)))

    assert loaded == [LoadedMember(archive, name, data) for name, data in FILES.items()]
    assert records == []
    assert summary == ArchiveSummary(archive, compression, 4, 0, complete=True)


def test_zstd_tar_streams_loaded_members(tmp_path: Path) -> None:
    """Archives compressed with zstd are read too."""
    archive = build_zstd_tar(tmp_path / "x.tar.zst", FILES)
    loaded, _, summary = split(list(scan_tar(archive)))
    assert {m.name: m.data for m in loaded if isinstance(m, LoadedMember)} == FILES
    assert summary.compression == "zstd"


@pytest.mark.parametrize("mode", ["w", "w:gz"])
def test_hostile_members_are_quarantined(tmp_path: Path, mode: str) -> None:
    """Traversal, absolute names, links and devices are refused with the archive as source."""
    archive = build_tar(tmp_path / "x", FILES, mode, hostile=True)

    kept, records, summary = split(list(scan_tar(archive)))

    assert sorted(m.name for m in kept) == sorted(FILES)
    assert {r.path: r.reason for r in records} == HOSTILE
    assert all(r.stage == Stage.UNTAR for r in records)
    assert all(r.source == f"{archive}#{r.path}" for r in records)
    link = next(r for r in records if r.path == "link")
    assert "/etc/passwd" in link.detail
    assert summary.members == len(FILES) + len(HOSTILE)
    assert summary.complete


def test_filter_size_cap_and_repeated_names(tmp_path: Path) -> None:
    """Non-matching members are skipped (counted), big ones and repeats refused."""
    path = tmp_path / "x.tar"
    with tarfile.open(path, "w") as tar:
        add(tar, "keep.jpg", b"1")
        add(tar, "notes.txt", b"2")
        add(tar, "big.jpg", b"3" * 100)
        add(tar, "keep.jpg", b"again")
    archive = str(path)

    kept, records, summary = split(
        list(scan_tar(archive, path_match_regex=r".*\.jpg", max_member_bytes=10))
    )

    assert [m.name for m in kept] == ["keep.jpg"]
    assert [(r.path, r.reason) for r in records] == [
        ("big.jpg", Reason.MEMBER_TOO_LARGE),
        ("keep.jpg", Reason.DUPLICATE_OUTPUT_PATH),
    ]
    assert (summary.members, summary.skipped) == (4, 1)


def _member_end(archive: str, name: str) -> int:
    with tarfile.open(archive) as tar:
        member = tar.getmember(name)
        return member.offset_data + member.size


@pytest.mark.parametrize(
    ("cut", "reason", "kept"),
    [
        ("mid_member", Reason.TRUNCATED_ARCHIVE, ["top.txt"]),
        ("mid_header", Reason.TRUNCATED_ARCHIVE, ["top.txt", "a/b/c.bin"]),
        ("no_end_block", Reason.TRUNCATED_ARCHIVE, list(FILES)),
        ("bad_checksum", Reason.CORRUPT_ARCHIVE, ["top.txt", "a/b/c.bin"]),
    ],
)
def test_damaged_uncompressed_tar_keeps_members_before_damage(
    tmp_path: Path, cut: str, reason: Reason, kept: list[str]
) -> None:
    """Members before the damage are kept; the damage is one record, never an exception."""
    archive = build_tar(tmp_path / "good.tar", FILES)
    raw = bytearray(Path(archive).read_bytes())
    c_bin_end = _member_end(archive, "a/b/c.bin")
    header_after_c = c_bin_end + (-c_bin_end % 512)
    if cut == "mid_member":
        raw = raw[: c_bin_end - 100]
    elif cut == "mid_header":
        raw = raw[: header_after_c + 100]
    elif cut == "no_end_block":
        last_end = _member_end(archive, "empty.dat")
        raw = raw[: last_end + (-last_end % 512)]
    else:
        raw[header_after_c + 148 : header_after_c + 156] = b"0000000\x00"  # checksum field
    damaged = tmp_path / "damaged.tar"
    damaged.write_bytes(bytes(raw))

    members, records, summary = split(list(scan_tar(str(damaged))))

    assert [m.name for m in members] == kept
    assert len(records) == 1
    assert (records[0].path, records[0].reason, records[0].source) == (
        str(damaged),
        reason,
        str(damaged),
    )
    assert not summary.complete


def test_truncated_compressed_tar_keeps_members_before_damage(tmp_path: Path) -> None:
    """A cut gzip stream: the members decoded before the cut are kept."""
    files = {f"m{i}.bin": os.urandom(50_000) for i in range(6)}
    archive = build_tar(tmp_path / "x.tar.gz", files, "w:gz")
    data = Path(archive).read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])

    members, records, summary = split(list(scan_tar(str(cut))))

    assert 1 <= len(members) < len(files)
    for member in members:
        assert isinstance(member, LoadedMember)
        assert member.data == files[member.name]
    assert [r.reason for r in records] == [Reason.TRUNCATED_ARCHIVE]
    assert not summary.complete


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", Reason.CORRUPT_ARCHIVE),
        (b"not a tar at all" * 100, Reason.CORRUPT_ARCHIVE),
        (gzip.compress(b"plain text, not a tar" * 100), Reason.CORRUPT_ARCHIVE),
        (bz2.compress(b"x" * 1000)[:-10], Reason.TRUNCATED_ARCHIVE),
        (lzma.compress(b"y" * 1000)[:30], Reason.TRUNCATED_ARCHIVE),
    ],
)
def test_unreadable_archives_are_one_record(tmp_path: Path, content: bytes, reason: Reason) -> None:
    """Empty files, non-tars and cut compressed streams are quarantined whole."""
    path = tmp_path / "x.tar"
    path.write_bytes(content)
    members, records, summary = split(list(scan_tar(str(path))))
    assert members == []
    assert [r.reason for r in records] == [reason]
    assert summary.members == 0
    assert not summary.complete


def test_corrupt_gzip_tar_is_corrupt(tmp_path: Path) -> None:
    """Flipped bytes in a gzip stream are corrupt data, not an I/O error."""
    archive = build_tar(tmp_path / "x.tgz", {"a.bin": os.urandom(20_000)}, "w:gz")
    raw = bytearray(Path(archive).read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 64] = bytes(64)
    Path(archive).write_bytes(bytes(raw))
    _, records, _ = split(list(scan_tar(archive)))
    assert [r.reason for r in records] == [Reason.CORRUPT_ARCHIVE]


def test_tar_compression_trusts_the_ustar_header(tmp_path: Path) -> None:
    """A plain tar whose first member is named like compression magic stays plain."""
    archive = tmp_path / "x.tar"
    with tarfile.open(archive, "w") as tar:
        add(tar, "BZh91AY&SY", b"data")
    assert tar_compression(archive.read_bytes()[:512]) == "uncompressed"
    assert tar_compression(gzip.compress(b"x")) == "gzip"


def test_atomic_create_leaves_nothing_on_failure(tmp_path: Path) -> None:
    """A write that fails half-way leaves neither the output nor its scratch file."""
    temp, out = tmp_path / "tmp", tmp_path / "out" / "x.bin"

    def fail_half_way() -> None:
        with atomic_create(str(out), str(temp)) as sink:
            sink.write(b"partial")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_half_way()
    assert not out.exists()
    assert list(temp.iterdir()) == []

    with atomic_create(str(out), str(temp)) as sink:
        sink.write(b"whole")
    assert out.read_bytes() == b"whole"
    assert list(temp.iterdir()) == []


def test_atomic_create_reports_a_folder_in_the_way(tmp_path: Path) -> None:
    """Renaming onto a folder is an OutputWriteError (quarantined by callers)."""
    (tmp_path / "out" / "x").mkdir(parents=True)
    with (
        pytest.raises(OutputWriteError),
        atomic_create(str(tmp_path / "out" / "x"), str(tmp_path / "tmp")) as sink,
    ):
        sink.write(b"data")


def test_read_tars_spreads_refs_and_streams_compressed(tmp_path: Path) -> None:
    """ReadTars gives every accepted member with its bytes, and the refusals."""
    plain = build_tar(tmp_path / "plain.tar", FILES, hostile=True)
    packed = build_tar(tmp_path / "packed.tar.gz", {"z/packed.txt": b"packed"}, "w:gz")
    expected_members = [LoadedMember(plain, n, d) for n, d in FILES.items()] + [
        LoadedMember(packed, "z/packed.txt", b"packed")
    ]

    with test_pipeline.TestPipeline() as p:
        contents = p | beam.Create([plain, packed]) | ReadTars()
        assert_that(contents.members, equal_to(expected_members), label="Members")
        assert_that(
            contents.quarantine | beam.Map(lambda r: (r.path, str(r.reason))),
            equal_to([(name, str(reason)) for name, reason in HOSTILE.items()]),
            label="Quarantine",
        )
        assert_that(
            contents.summaries | beam.Map(lambda s: (s.archive, s.members, s.complete)),
            equal_to([(plain, len(FILES) + len(HOSTILE), True), (packed, 1, True)]),
            label="Summaries",
        )


def test_index_tars_outputs_refs_for_plain_and_bytes_for_compressed(tmp_path: Path) -> None:
    """IndexTars splits its output: refs (no bytes) versus loaded members."""
    plain = build_tar(tmp_path / "plain.tar", {"x.txt": b"x"})
    packed = build_tar(tmp_path / "packed.tar.xz", {"y.txt": b"y"}, "w:xz")
    offset = next(
        r.offset for r in scan_tar(plain) if isinstance(r, MemberRef) and r.name == "x.txt"
    )

    with test_pipeline.TestPipeline() as p:
        index = p | beam.Create([plain, packed]) | IndexTars()
        assert_that(index.refs, equal_to([MemberRef(plain, "x.txt", offset, 1)]), label="Refs")
        assert_that(index.loaded, equal_to([LoadedMember(packed, "y.txt", b"y")]), label="Loaded")


class _Zeros(io.RawIOBase):
    """``size`` zero bytes, made as they are read (a big member without holding it)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._left)
        buffer[:n] = bytes(n)
        self._left -= n
        return n


def zeros_tar_gz(path: Path, size: int) -> str:
    """A .tar.gz of one member of ``size`` zero bytes (it compresses about 1000:1)."""
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        info = tarfile.TarInfo("big.bin")
        info.size = size
        tar.addfile(info, io.BufferedReader(_Zeros(size), 1 << 20))
    return str(path)


def peak_python_bytes(run: Any) -> int:
    """The peak of Python's allocations while ``run()`` runs (tracemalloc: not timed)."""
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


BIG = 64 << 20


@pytest.fixture(scope="module")
def big_tar_gz(tmp_path_factory: pytest.TempPathFactory) -> str:
    return zeros_tar_gz(tmp_path_factory.mktemp("big") / "big.tar.gz", BIG)


def test_staged_members_of_compressed_tars_never_sit_in_memory(
    big_tar_gz: str, tmp_path: Path
) -> None:
    """With stage_dir, a 64 MiB member is copied in chunks: a few MiB of memory, not 64."""
    items: list[Any] = []
    peak = peak_python_bytes(lambda: items.extend(scan_tar(big_tar_gz, stage_dir=str(tmp_path))))
    (staged,), records, summary = split(items)
    assert isinstance(staged, StagedMember)
    assert (staged.name, staged.size, records, summary.complete) == ("big.bin", BIG, [], True)
    assert Path(staged.staged).read_bytes() == bytes(BIG)
    assert peak < BIG // 8


def test_loaded_members_of_compressed_tars_take_at_most_twice_their_size(big_tar_gz: str) -> None:
    """Without stage_dir the member is in memory once, plus its chunks while they are joined."""
    sizes: list[int] = []

    def scan() -> None:
        # Each item is dropped as soon as it is measured, as a fused step would.
        sizes.extend(len(m.data) for m in scan_tar(big_tar_gz) if isinstance(m, LoadedMember))

    peak = peak_python_bytes(scan)
    assert sizes == [BIG]
    assert peak < 2 * BIG + (BIG // 8)


@pytest.mark.parametrize("tar_format", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_a_huge_long_name_or_pax_header_is_refused_before_it_is_read(
    tmp_path: Path, tar_format: int
) -> None:
    """Long names and pax headers are read whole by tarfile: over 1 MiB, the archive is refused."""
    path = tmp_path / "x.tar.gz"
    with tarfile.open(path, "w:gz", format=tar_format) as tar:
        add(tar, "first.txt", b"kept")
        add(tar, "d/" * (1 << 20) + "x.txt", b"long name")
    items, records, summary = split(list(scan_tar(str(path))))
    assert [m.name for m in items] == ["first.txt"]
    assert [r.reason for r in records] == [Reason.CORRUPT_ARCHIVE]
    assert "extended header" in records[0].detail
    assert not summary.complete
