"""Streaming decompression: formats, caps, corrupt files, and the decompress pipeline end to end."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from datathon_etl.framework.archives import (
    COMPRESSIONS,
    CompressedFileError,
    DecompressJob,
    decompress_file,
    detect_compression,
)
from datathon_etl.framework.manifest import Manifest
from datathon_etl.framework.pipelines import decompress
from datathon_etl.framework.quarantine import Quarantined, Reason
from tests.emulators import GcsHandle

DATA = os.urandom(200_000) + b"compressible " * 50_000


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-15)
    return packer.compress(data) + packer.flush()


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "lzma": lzma.compress,
    "zstd": zstandard.ZstdCompressor().compress,
    "deflate": zlib.compress,
}


def test_compression_names_are_beams() -> None:
    """The format names are Beam's CompressionTypes values."""
    assert set(COMPRESSIONS) == {
        CompressionTypes.GZIP,
        CompressionTypes.BZIP2,
        CompressionTypes.LZMA,
        CompressionTypes.ZSTD,
        CompressionTypes.DEFLATE,
    }


@pytest.mark.parametrize("compression", sorted(COMPRESSORS))
def test_detect_compression_from_magic_bytes(compression: str) -> None:
    """Every format is recognised from its first bytes."""
    assert detect_compression(COMPRESSORS[compression](b"x" * 100)) == compression


def test_detect_compression_of_other_bytes() -> None:
    """Plain data is no format; zlib's weak header can be turned off."""
    assert detect_compression(b"hello world") is None
    assert detect_compression(zlib.compress(b"x"), zlib_header=False) is None


@pytest.mark.parametrize("compression", sorted(COMPRESSORS))
@pytest.mark.parametrize("forced", [False, True])
def test_decompress_file_round_trips(tmp_path: Path, compression: str, forced: bool) -> None:
    """Each format decompresses byte for byte, detected or forced."""
    source = tmp_path / "in.bin"
    source.write_bytes(COMPRESSORS[compression](DATA))
    job = DecompressJob(str(source), str(tmp_path / "out" / "x"))

    result = decompress_file(
        job, temp_dir=str(tmp_path / "tmp"), compression=compression if forced else "auto"
    )

    assert (tmp_path / "out" / "x").read_bytes() == DATA
    assert (result.compression, result.bytes_written) == (compression, len(DATA))
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.parametrize(
    ("compression", "content"),
    [
        ("gzip", gzip.compress(b"first ") + gzip.compress(b"second")),
        ("bzip2", bz2.compress(b"first ") + bz2.compress(b"second")),
        ("lzma", lzma.compress(b"first ") + lzma.compress(b"second")),
        (
            "zstd",
            zstandard.ZstdCompressor().compress(b"first ")
            + zstandard.ZstdCompressor().compress(b"second"),
        ),
        ("deflate", zlib.compress(b"first ") + zlib.compress(b"second")),
    ],
)
def test_concatenated_streams(tmp_path: Path, compression: str, content: bytes) -> None:
    """Concatenated streams (as from `cat a.gz b.gz`) decompress whole."""
    source = tmp_path / "in"
    source.write_bytes(content)
    decompress_file(DecompressJob(str(source), str(tmp_path / "out")), temp_dir=str(tmp_path / "t"))
    assert (tmp_path / "out").read_bytes() == b"first second"


def test_raw_deflate_needs_the_flag(tmp_path: Path) -> None:
    """Raw deflate has no magic: refused under auto, read when forced."""
    source = tmp_path / "in"
    source.write_bytes(raw_deflate(DATA))
    job = DecompressJob(str(source), str(tmp_path / "out"))
    with pytest.raises(CompressedFileError) as refused:
        decompress_file(job, temp_dir=str(tmp_path / "t"))
    assert refused.value.reason is Reason.UNKNOWN_COMPRESSION
    decompress_file(job, temp_dir=str(tmp_path / "t"), compression="deflate")
    assert (tmp_path / "out").read_bytes() == DATA


@pytest.mark.parametrize("compression", sorted(COMPRESSORS))
def test_truncated_files_are_corrupt(tmp_path: Path, compression: str) -> None:
    """A cut stream is an error for every format (Beam's own reader ends silently)."""
    whole = COMPRESSORS[compression](DATA)
    source = tmp_path / "in"
    source.write_bytes(whole[: len(whole) - 7])
    out = tmp_path / "out"

    with pytest.raises(CompressedFileError) as refused:
        decompress_file(DecompressJob(str(source), str(out)), temp_dir=str(tmp_path / "t"))

    assert refused.value.reason is Reason.CORRUPT_COMPRESSED_FILE
    assert not out.exists()
    assert list((tmp_path / "t").iterdir()) == []


def write_bomb(path: Path, compression: str, megabytes: int) -> None:
    """Writes ``megabytes`` MiB of zeros compressed, a chunk at a time."""
    zeros = bytes(1 << 20)
    if compression == "gzip":
        with gzip.GzipFile(path, "wb") as f:
            for _ in range(megabytes):
                f.write(zeros)
    else:
        with path.open("wb") as raw, zstandard.ZstdCompressor().stream_writer(raw) as f:
            for _ in range(megabytes):
                f.write(zeros)


@pytest.fixture(scope="module")
def gzip_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 MiB of zeros as about 200 KB of gzip, made once for the module."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.bin.gz"
    write_bomb(path, "gzip", 200)
    return path


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_bomb_decompresses_in_constant_memory(
    tmp_path: Path, gzip_bomb: Path, compression: str
) -> None:
    """200 MiB out of a few hundred KiB, with peak memory far below the output size."""
    source = gzip_bomb
    if compression == "zstd":
        source = tmp_path / "bomb.zst"
        write_bomb(source, compression, 200)
    assert source.stat().st_size < 1 << 20
    out = tmp_path / "out"

    tracemalloc.start()
    try:
        decompress_file(DecompressJob(str(source), str(out)), temp_dir=str(tmp_path / "t"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert out.stat().st_size == 200 << 20
    assert peak < 24 << 20  # measured: about 4 MiB (gzip), 12 MiB (zstd)


def test_bomb_over_the_cap_is_refused_and_removed(tmp_path: Path, gzip_bomb: Path) -> None:
    """Past --max_decompressed_bytes the copy stops and the partial output goes."""
    source = gzip_bomb
    out = tmp_path / "out"

    with pytest.raises(CompressedFileError) as refused:
        decompress_file(
            DecompressJob(str(source), str(out)),
            temp_dir=str(tmp_path / "t"),
            max_decompressed_bytes=5 << 20,
        )

    assert refused.value.reason is Reason.DECOMPRESSED_TOO_LARGE
    assert not out.exists()
    assert list((tmp_path / "t").iterdir()) == []


def test_relative_inputs_are_relative_to_the_glob_root() -> None:
    """Output names come from the path below the folder the glob starts in."""
    matched = {
        "gs://b/raw/**.gz": ["gs://b/raw/a.gz", "gs://b/raw/x/y.gz"],
        "gs://b/raw/x/*.gz": ["gs://b/raw/x/y.gz"],
        "local.gz": ["local.gz"],
    }
    assert decompress.relative_inputs(matched) == [
        ("gs://b/raw/a.gz", "a.gz"),
        ("gs://b/raw/x/y.gz", "x/y.gz"),
        ("local.gz", "local.gz"),
    ]


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def read_quarantine(out: Path) -> list[Quarantined]:
    return [
        Quarantined.from_json(line)
        for shard in sorted((out / "_quarantine").glob("*.jsonl"))
        for line in shard.read_text().splitlines()
    ]


def test_main_end_to_end(
    tmp_path: Path, gzip_bomb: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Good files are written; corrupt, unknown, bomb and clashing files are quarantined."""
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for compression, suffix in [
        ("gzip", "gz"),
        ("bzip2", "bz2"),
        ("lzma", "xz"),
        ("zstd", "zst"),
        ("deflate", "deflate"),
    ]:
        (src / "sub" / f"{compression}.csv.{suffix}").write_bytes(COMPRESSORS[compression](DATA))
    good = gzip.compress(b"good")
    (src / "good.txt.gz").write_bytes(good)
    (src / "corrupt.txt.gz").write_bytes(good[:-6])  # trailer cut
    (src / "plain.txt.gz").write_bytes(b"not compressed at all")
    (src / "bomb.bin.gz").write_bytes(gzip_bomb.read_bytes())
    (src / "clash.txt.gz").write_bytes(gzip.compress(b"clash gz"))
    (src / "clash.txt.bz2").write_bytes(bz2.compress(b"clash bz2"))
    (src / "readme.md").write_text("skipped: no compression extension")
    out = tmp_path / "out"

    code = decompress.main(
        [
            "--input_pattern",
            f"{src}/**",
            "--output_dir",
            str(out),
            "--max_decompressed_bytes",
            str(10 << 20),
        ]
    )

    assert code == 1
    assert {p for p in files_under(tmp_path) if not p.startswith("in/")} == {
        f"out/{name}"
        for name in [
            "sub/gzip.csv",
            "sub/bzip2.csv",
            "sub/lzma.csv",
            "sub/zstd.csv",
            "sub/deflate.csv",
            "good.txt",
            "clash.txt",
            "_manifest.json",
            "_quarantine/quarantine-00000-of-00001.jsonl",
        ]
    }
    for compression in COMPRESSORS:
        assert (out / "sub" / f"{compression}.csv").read_bytes() == DATA
    assert (out / "good.txt").read_bytes() == b"good"
    assert (out / "clash.txt").read_bytes() == b"clash bz2"  # clash.txt.bz2 sorts first
    assert {(Path(r.source).name, r.reason) for r in read_quarantine(out)} == {
        ("corrupt.txt.gz", Reason.CORRUPT_COMPRESSED_FILE),
        ("plain.txt.gz", Reason.UNKNOWN_COMPRESSION),
        ("bomb.bin.gz", Reason.DECOMPRESSED_TOO_LARGE),
        ("clash.txt.gz", Reason.DUPLICATE_OUTPUT_PATH),
    }

    manifest = Manifest.read(str(out / "_manifest.json"))
    manifest.check()
    files = manifest.stages["files"]
    assert (files.input, files.written, files.skipped, files.quarantined_total) == (12, 7, 1, 4)
    assert (out / "_manifest.json").read_text().endswith("}\n")
    stdout, stderr = capsys.readouterr()
    assert "files: 12 in, 7 written, 1 skipped, 4 quarantined" in stdout
    assert "4 of 12 inputs quarantined" in stderr


def test_main_relocates_and_tolerates_bad_fraction(tmp_path: Path) -> None:
    """--path_sub_pattern/--path_sub_repl place outputs; an escaping path is refused."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.csv.gz").write_bytes(gzip.compress(b"a"))
    (src / "b.csv.gz").write_bytes(gzip.compress(b"b"))
    out = tmp_path / "out"

    code = decompress.main(
        [
            "--input_pattern",
            f"{src}/*.csv.gz",
            "--output_dir",
            str(out),
            "--path_sub_pattern",
            r"^(a|b)\.csv\.gz$",
            "--path_sub_repl",
            r"csv/\1.csv",
            "--max_bad_fraction",
            "0.5",
        ]
    )
    assert code == 0
    assert (out / "csv" / "a.csv").read_bytes() == b"a"
    assert (out / "csv" / "b.csv").read_bytes() == b"b"

    code = decompress.main(
        [
            "--input_pattern",
            f"{src}/*.csv.gz",
            "--output_dir",
            str(out),
            "--path_sub_pattern",
            r"^a\.csv\.gz$",
            "--path_sub_repl",
            "../escaped.csv",
        ]
    )
    assert code == 1
    assert not (tmp_path / "escaped.csv").exists()
    assert [(r.reason, r.source) for r in read_quarantine(out)] == [
        (Reason.UNSAFE_OUTPUT_PATH, str(src / "a.csv.gz"))
    ]
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["stages"]["files"] == {
        "input": 2,
        "written": 0,
        "skipped": 1,
        "quarantined": {"unsafe_output_path": 1},
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input_pattern", "{tmp}/nothing/*.gz"], "matches no file"),
        (["--input_pattern", "{tmp}/x.gz", "--path_sub_repl", r"\2"], "group '2'"),
        (["--input_pattern", "{tmp}/x.gz", "--path_sub_pattern", "("], "--path_sub_pattern"),
        (["--input_pattern", "{tmp}/x.gz", "--max_bad_fraction", "2"], "--max_bad_fraction"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    """Bad flags and empty globs stop before the pipeline, with one line on stderr."""
    (tmp_path / "x.gz").write_bytes(gzip.compress(b"x"))
    argv = [a.format(tmp=tmp_path) for a in args] + ["--output_dir", str(tmp_path / "out")]

    assert decompress.main(argv) == 2

    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1
    assert stderr.startswith("datathon-etl decompress: ")
    assert message in stderr
    assert not (tmp_path / "out").exists()


def test_decompress_on_gcs(gcs: GcsHandle) -> None:
    """gs:// inputs and outputs work like local ones (fake GCS server)."""
    bucket = gcs.bucket()
    for name, content in [
        ("raw/a/good.csv.gz", gzip.compress(DATA)),
        ("raw/bad.csv.gz", gzip.compress(DATA)[:-20]),
    ]:
        with FileSystems.create(f"{bucket}/{name}", compression_type="uncompressed") as f:
            f.write(content)

    code = decompress.main(["--input_pattern", f"{bucket}/raw/**", "--output_dir", f"{bucket}/out"])

    assert code == 1
    [listing] = FileSystems.match([f"{bucket}/out/**"])
    names = sorted(m.path[len(bucket) + 5 :] for m in listing.metadata_list)
    assert names[:2] == ["_manifest.json", "_quarantine/quarantine-00000-of-00001.jsonl"]
    assert names[2:] == ["a/good.csv"]
    with FileSystems.open(f"{bucket}/out/a/good.csv", compression_type="uncompressed") as f:
        assert f.read() == DATA
    manifest = Manifest.read(f"{bucket}/out/_manifest.json")
    manifest.check()
    assert manifest.stages["files"].quarantined == {"corrupt_compressed_file": 1}


# --- The original's way: --gcs_input_prefix, full locations rewritten --------


def _original(*argv: str) -> int:
    return decompress.main(list(argv))


def test_gcs_input_prefix_drops_the_extension_beside_the_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r"""The original's first pattern: `\.gz$` -> '' writes beside each input; re-runs work."""
    src = tmp_path / "raw"
    (src / "sub").mkdir(parents=True)
    (src / "a.csv.gz").write_bytes(gzip.compress(b"a"))
    (src / "sub" / "b.csv.gz").write_bytes(gzip.compress(b"b"))
    argv = ["--gcs_input_prefix", f"{src}/", "--path_sub_pattern", r"\.gz$", "--path_sub_repl="]

    assert _original(*argv) == 0
    assert (src / "a.csv").read_bytes() == b"a"
    assert (src / "sub" / "b.csv").read_bytes() == b"b"
    records = tmp_path / "raw.decompress"
    assert f"no --output_dir: manifest and quarantine go to {records}" in capsys.readouterr().out
    files = Manifest.read(str(records / "_manifest.json")).stages["files"]
    assert (files.input, files.written, files.skipped) == (2, 2, 0)

    # The outputs are listed now, skipped by the pattern, and replaced.
    (src / "a.csv").write_bytes(b"stale")
    assert _original(*argv) == 0
    assert (src / "a.csv").read_bytes() == b"a"
    files = Manifest.read(str(records / "_manifest.json")).stages["files"]
    assert (files.input, files.written, files.skipped) == (4, 2, 2)


def test_gcs_input_prefix_moves_into_a_sibling_folder(tmp_path: Path) -> None:
    """The original's second pattern: the full location rewritten into another folder."""
    src = tmp_path / "raw"
    src.mkdir()
    (src / "a.csv.gz").write_bytes(gzip.compress(b"a"))
    (src / "notes.txt").write_text("skipped")
    code = _original(
        "--gcs_input_prefix",
        f"{src}/",
        "--path_sub_pattern",
        rf"^{tmp_path}/raw/(.*)\.gz$",
        "--path_sub_repl",
        rf"{tmp_path}/unzipped/\1",
        "--output_dir",
        str(tmp_path / "records"),
    )
    assert code == 0
    assert (tmp_path / "unzipped" / "a.csv").read_bytes() == b"a"
    assert files_under(tmp_path / "unzipped") == {"a.csv"}
    files = Manifest.read(str(tmp_path / "records" / "_manifest.json")).stages["files"]
    assert (files.input, files.written, files.skipped) == (2, 1, 1)


@pytest.mark.parametrize(
    ("pattern", "repl", "message"),
    [
        (r"\.gz$", ".gz", "write {src}/a.csv.gz over itself"),
        (r"^(.*)/[ab]\.csv\.gz$", r"\1/b.csv.gz", "over {src}/b.csv.gz, an input of this run"),
    ],
)
def test_gcs_input_prefix_never_overwrites_an_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pattern: str, repl: str, message: str
) -> None:
    """A rewrite onto a file the run reads stops it before anything runs, in one line."""
    src = tmp_path / "raw"
    src.mkdir()
    a = gzip.compress(b"a")
    (src / "a.csv.gz").write_bytes(a)
    (src / "b.csv.gz").write_bytes(gzip.compress(b"b"))
    argv = ["--gcs_input_prefix", f"{src}/", "--path_sub_pattern", pattern]

    assert _original(*argv, "--path_sub_repl", repl) == 2

    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1
    assert message.format(src=src) in stderr
    assert (src / "a.csv.gz").read_bytes() == a
    assert not (tmp_path / "raw.decompress").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--gcs_input_prefix", "/"], "give --output_dir"),
        (["--gcs_input_prefix", "{tmp}/", "--input_pattern", "{tmp}/*"], "not both"),
    ],
)
def test_gcs_input_prefix_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    """No folder beside the inputs, or both input flags: one line, exit 2."""
    (tmp_path / "x.gz").write_bytes(gzip.compress(b"x"))
    assert _original(*[a.format(tmp=tmp_path) for a in argv]) == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1
    assert message in stderr


@pytest.mark.parametrize(
    ("repl", "detail"),
    [
        ("x", "not a location of the input's kind"),
        ("gs://bucket/x", "not a location of the input's kind"),
        (r"{tmp}/../\1", "'..' component"),
        (r"{tmp}/raw.decompress/_manifest.json", "reserved for the run's own files"),
    ],
)
def test_gcs_input_prefix_refuses_unsafe_rewrites(tmp_path: Path, repl: str, detail: str) -> None:
    """A rewrite to another kind of location, up a folder or onto the run's records: quarantined."""
    src = tmp_path / "raw"
    src.mkdir()
    (src / "a.gz").write_bytes(gzip.compress(b"a"))
    argv = ["--gcs_input_prefix", f"{src}/", "--path_sub_pattern", r"^.*/(a)\.gz$"]

    assert _original(*argv, "--path_sub_repl", repl.format(tmp=tmp_path)) == 1

    [record] = read_quarantine(tmp_path / "raw.decompress")
    assert record.reason is Reason.UNSAFE_OUTPUT_PATH
    assert detail in record.detail
    assert files_under(tmp_path) == {
        "raw/a.gz",
        "raw.decompress/_manifest.json",
        "raw.decompress/_quarantine/quarantine-00000-of-00001.jsonl",
    }
