"""The untar pipeline end to end, and the manifest every pipeline writes."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
import zstandard
from apache_beam.io.filesystems import FileSystems

from datathon_etl.framework.manifest import (
    Manifest,
    ManifestMismatchError,
    Outcome,
    StageCounts,
    Tally,
)
from datathon_etl.framework.pipelines import untar
from datathon_etl.framework.quarantine import Quarantined, Reason, Stage
from tests.emulators import GcsHandle


def add(tar: tarfile.TarFile, name: str, data: bytes | None = None, **fields: object) -> None:
    info = tarfile.TarInfo(name)
    for key, value in fields.items():
        setattr(info, key, value)
    if data is not None:
        info.size = len(data)
    tar.addfile(info, io.BytesIO(data) if data is not None else None)


def write_tar(path: Path, files: dict[str, bytes], mode: Any = "w") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, data in files.items():
            add(tar, name, data)
    return path


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def read_quarantine(out: Path) -> list[Quarantined]:
    return [
        Quarantined.from_json(line)
        for shard in sorted((out / "_quarantine").glob("*.jsonl"))
        for line in shard.read_text().splitlines()
    ]


PLAIN = {
    "files/p10/p10000032/s50414267/a.jpg": os.urandom(70_000),
    "files/p10/p10000032/s50414267/b.jpg": os.urandom(1_000),
    "files/p11/c.jpg": b"",
    "README.txt": b"read me\n",
}
GZ = {"files/p12/d.jpg": os.urandom(5_000)}
BZ2 = {"files/p13/e.jpg": os.urandom(5_000)}
XZ = {"files/p14/f.jpg": os.urandom(5_000)}
ZST = {"files/p15/g.jpg": os.urandom(5_000)}


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """Archives of every kind, one hostile, one truncated, under tmp_path/in."""
    src = tmp_path / "in"
    src.mkdir()
    with tarfile.open(src / "plain.tar", "w") as tar:
        add(tar, "files", type=tarfile.DIRTYPE)
        for name, data in PLAIN.items():
            add(tar, name, data)
        add(tar, "../evil.jpg", b"escape")
        add(tar, "/etc/cron.d/evil", b"absolute")
        add(tar, "files/link.jpg", type=tarfile.SYMTYPE, linkname="../../etc/passwd")
        add(tar, "files/hard.jpg", type=tarfile.LNKTYPE, linkname="README.txt")
        add(tar, "files/fifo", type=tarfile.FIFOTYPE)
        add(tar, "_manifest.json", b"{}")
    write_tar(src / "gz.tar.gz", GZ, "w:gz")
    write_tar(src / "bz2.tar.bz2", BZ2, "w:bz2")
    write_tar(src / "xz.tar.xz", XZ, "w:xz")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in ZST.items():
            add(tar, name, data)
    (src / "zst.tar.zst").write_bytes(zstandard.ZstdCompressor().compress(raw.getvalue()))
    whole = write_tar(src / "whole.tar", {"files/p16/h.jpg": b"h" * 600, "files/p16/i.jpg": b"i"})
    (src / "cut.tar").write_bytes(whole.read_bytes()[:1300])  # before i.jpg's header
    whole.unlink()
    return src


def test_main_end_to_end(tmp_path: Path, inputs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every kind of archive is extracted byte for byte; refusals and damage are counted."""
    out = tmp_path / "out"

    code = untar.main(["--input_tars", f"{inputs}/*.tar", f"{inputs}/*.tar.*"])
    assert code == 2  # no --output_dir
    code = untar.main(
        ["--input_tars", f"{inputs}/*.tar", f"{inputs}/*.tar.*", "--output_dir", str(out)]
    )

    assert code == 1  # something was quarantined and --max_bad_fraction is 0
    expected = PLAIN | GZ | BZ2 | XZ | ZST | {"files/p16/h.jpg": b"h" * 600}
    written = files_under(out)
    quarantine_shards = [name for name in written if name.startswith("_quarantine/")]
    assert len(quarantine_shards) == 1
    del written[quarantine_shards[0]]
    manifest_bytes = written.pop("_manifest.json")
    assert written == expected
    # Nothing anywhere but the inputs and the output folder.
    assert {p.name for p in tmp_path.iterdir()} == {"in", "out"}
    assert sorted(p.name for p in inputs.iterdir()) == [
        "bz2.tar.bz2",
        "cut.tar",
        "gz.tar.gz",
        "plain.tar",
        "xz.tar.xz",
        "zst.tar.zst",
    ]

    records = read_quarantine(out)
    plain, cut = str(inputs / "plain.tar"), str(inputs / "cut.tar")
    assert {(r.path, r.reason, r.source) for r in records} == {
        ("../evil.jpg", Reason.UNSAFE_MEMBER_PATH, f"{plain}#../evil.jpg"),
        ("/etc/cron.d/evil", Reason.UNSAFE_MEMBER_PATH, f"{plain}#/etc/cron.d/evil"),
        ("files/link.jpg", Reason.LINK_MEMBER, f"{plain}#files/link.jpg"),
        ("files/hard.jpg", Reason.LINK_MEMBER, f"{plain}#files/hard.jpg"),
        ("files/fifo", Reason.SPECIAL_MEMBER, f"{plain}#files/fifo"),
        ("_manifest.json", Reason.UNSAFE_MEMBER_PATH, f"{plain}#_manifest.json"),
        (cut, Reason.TRUNCATED_ARCHIVE, cut),
    }
    assert all(r.stage == Stage.UNTAR for r in records)

    manifest = Manifest.read(str(out / "_manifest.json"))
    manifest.check()
    assert manifest.stages == {
        "archives": StageCounts(input=6, written=5, quarantined={"truncated_archive": 1}),
        "members": StageCounts(
            input=len(PLAIN) + 6 + 4 + 1,  # plain's members, its refusals, 4 compressed, h.jpg
            written=len(expected),
            quarantined={"link_member": 2, "special_member": 1, "unsafe_member_path": 3},
        ),
    }
    assert manifest_bytes == manifest.to_json().encode()
    stdout, stderr = capsys.readouterr()
    assert "untar: members: 15 in, 9 written, 6 quarantined" in stdout
    assert stderr.splitlines()[-1] == (
        "untar: 7 of 21 inputs quarantined (33.33% > --max_bad_fraction 0)"
    )


def test_filter_duplicates_and_clean_exit(tmp_path: Path) -> None:
    """--path_match_regex skips (not quarantines); a name in two archives is written once."""
    src = tmp_path / "in"
    src.mkdir()
    write_tar(src / "a.tar", {"x/1.jpg": b"from a", "x/notes.txt": b"n", "x/2.jpg": b"2"})
    write_tar(src / "b.tar.gz", {"x/1.jpg": b"from b", "x/3.jpg": b"3"}, "w:gz")
    out = tmp_path / "out"
    argv = ["--input_tars", f"{src}/*", "--output_dir", str(out), "--path_match_regex", r".*\.jpg"]

    assert untar.main(argv) == 1
    assert files_under(out / "x") == {"1.jpg": b"from a", "2.jpg": b"2", "3.jpg": b"3"}
    [record] = read_quarantine(out)
    assert (record.reason, record.source) == (
        Reason.DUPLICATE_OUTPUT_PATH,
        f"{src / 'b.tar.gz'}#x/1.jpg",
    )
    members = Manifest.read(str(out / "_manifest.json")).stages["members"]
    assert (members.input, members.written, members.skipped, members.quarantined_total) == (
        5,
        3,
        1,
        1,
    )

    # Tolerated: one bad input in seven is under the fraction, so the run succeeds.
    assert untar.main([*argv, "--max_bad_fraction", "0.2"]) == 0
    assert not (out / "_tmp").exists()


def test_write_conflict_is_quarantined(tmp_path: Path) -> None:
    """A file and a folder of the same name: one of the two writes fails, counted, no crash."""
    src = tmp_path / "in"
    src.mkdir()
    write_tar(src / "x.tar", {"a": b"file", "a/b": b"under a folder a"})
    out = tmp_path / "out"

    assert untar.main(["--input_tars", str(src / "x.tar"), "--output_dir", str(out)]) == 1

    [record] = read_quarantine(out)
    assert (record.stage, record.reason) == (Stage.WRITE, Reason.WRITE_FAILED)
    manifest = Manifest.read(str(out / "_manifest.json"))
    manifest.check()
    assert manifest.stages["members"].written == 1


def test_multi_processing_runner_counts_the_same(tmp_path: Path) -> None:
    """Counts are computed in the pipeline, so they survive worker processes."""
    src = tmp_path / "in"
    src.mkdir()
    write_tar(src / "a.tar", {f"m/{i}.bin": bytes([i]) * 100 for i in range(20)})
    write_tar(src / "b.tgz", {f"n/{i}.bin": bytes([i]) * 100 for i in range(5)}, "w:gz")
    out = tmp_path / "out"

    code = untar.main(
        [
            "--input_tars",
            f"{src}/*",
            "--output_dir",
            str(out),
            "--direct_running_mode=multi_processing",
            "--direct_num_workers=2",
        ]
    )

    assert code == 0
    assert len(files_under(out / "m")) == 20
    assert len(files_under(out / "n")) == 5
    members = Manifest.read(str(out / "_manifest.json")).stages["members"]
    assert (members.input, members.written) == (25, 25)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input_tars", "{tmp}/missing/*.tar"], "untar: --input_tars: '{tmp}/missing/*.tar'"),
        ([], "untar: --input_tars is required"),
        (["--input_tars", "{tmp}/x.tar", "--path_match_regex", "("], "--path_match_regex"),
        (["--input_tars", "{tmp}/x.tar", "--max_member_bytes", "0"], "--max_member_bytes"),
        (["--input_tars", "{tmp}/x.tar", "--max_member_byte", "9"], "did you mean"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    """A glob that matches nothing (or a bad flag) stops before the pipeline, in one line."""
    write_tar(tmp_path / "x.tar", {"a": b"a"})
    argv = [a.format(tmp=tmp_path) for a in args] + ["--output_dir", str(tmp_path / "out")]

    assert untar.main(argv) == 2

    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1
    assert message.format(tmp=tmp_path) in stderr
    assert not (tmp_path / "out").exists()


def test_manifest_check_and_json() -> None:
    """check() verifies input = written + skipped + quarantined; JSON is sorted, newline-ended."""
    tallies = [
        Tally("b_stage", Outcome.INPUT, count=5),
        Tally("b_stage", Outcome.WRITTEN, count=3),
        Tally("b_stage", Outcome.SKIPPED),
        Tally("b_stage", Outcome.QUARANTINED, "link_member"),
        Tally("a_stage", Outcome.INPUT, count=2),
        Tally("a_stage", Outcome.WRITTEN),
    ]
    manifest = Manifest.from_tallies("demo", tallies, {"z": 1, "a": [2]})

    with pytest.raises(ManifestMismatchError, match="a_stage: input 2 != written 1"):
        manifest.check()
    assert manifest.problems() == ["a_stage: input 2 != written 1 + skipped 0 + quarantined 0"]
    assert manifest.bad_fraction() == pytest.approx(1 / 7)
    text = manifest.to_json()
    assert text.endswith("}\n")
    assert list(json.loads(text)) == ["parameters", "pipeline", "stages"]
    assert list(json.loads(text)["stages"]) == ["a_stage", "b_stage"]
    assert Manifest.from_dict(json.loads(text)) == manifest

    balanced = Manifest.from_tallies("demo", [*tallies, Tally("a_stage", Outcome.SKIPPED)])
    balanced.check()


@pytest.mark.parametrize(
    ("parameter", "name"),
    [
        ("tfrecord_shards", "tfrecords"),
        ("webdataset_shards", "webdataset"),
        ("parquet_shards", "parquet"),
    ],
)
def test_manifest_reports_images_missing_from_the_shards(parameter: str, name: str) -> None:
    """Records read back from each format's shards must equal the images written."""
    tallies = [Tally("images", Outcome.INPUT, count=3), Tally("images", Outcome.WRITTEN, count=3)]
    shards = {"train/data-00000-of-00002.x": 2, "valid/data-00000-of-00001.x": 0}
    lost = Manifest.from_tallies("demo", tallies, {parameter: shards})
    assert lost.problems() == [f"{name}: 2 records in the shards != 3 images written"]

    shards["valid/data-00000-of-00001.x"] = 1
    assert Manifest.from_tallies("demo", tallies, {parameter: shards}).problems() == []


def upload(local: Path, uri: str) -> None:
    with FileSystems.create(uri) as f:
        f.write(local.read_bytes())


def read_gcs_tree(prefix: str) -> dict[str, bytes]:
    [result] = FileSystems.match([f"{prefix}/**"])
    contents = {}
    for metadata in result.metadata_list:
        with FileSystems.open(metadata.path, compression_type="uncompressed") as f:
            contents[metadata.path[len(prefix) + 1 :]] = f.read()
    return contents


def test_untar_on_gcs(tmp_path: Path, gcs: GcsHandle) -> None:
    """gs:// inputs and outputs work like local ones (fake GCS server)."""
    bucket = gcs.bucket()
    upload(
        write_tar(tmp_path / "a.tar", {"x/1.jpg": b"one", "x/y/2.jpg": b"two"}),
        f"{bucket}/in/a.tar",
    )
    upload(write_tar(tmp_path / "b.tgz", {"z/3.jpg": b"three"}, "w:gz"), f"{bucket}/in/b.tgz")
    with tarfile.open(tmp_path / "evil.tar", "w") as tar:
        add(tar, "../outside.jpg", b"escape")
    upload(tmp_path / "evil.tar", f"{bucket}/in/evil.tar")

    code = untar.main(["--input_tars", f"{bucket}/in/*", "--output_dir", f"{bucket}/out/"])

    assert code == 1
    tree = read_gcs_tree(f"{bucket}/out")
    manifest = Manifest.from_dict(json.loads(tree.pop("_manifest.json")))
    assert [name for name in tree if name.startswith("_quarantine/")] != []
    assert {k: v for k, v in tree.items() if not k.startswith("_")} == {
        "x/1.jpg": b"one",
        "x/y/2.jpg": b"two",
        "z/3.jpg": b"three",
    }
    assert not any(name.startswith("_tmp/") for name in tree)
    assert sorted(read_gcs_tree(bucket)) == sorted(
        ["in/a.tar", "in/b.tgz", "in/evil.tar"]
        + [f"out/{name}" for name in tree]
        + ["out/_manifest.json"]
    )
    manifest.check()
    assert manifest.stages["members"].quarantined == {"unsafe_member_path": 1}


def test_clean_run_leaves_one_empty_quarantine_file(tmp_path: Path) -> None:
    """Nothing refused: `_quarantine/*.jsonl` still matches one (empty) file."""
    src = tmp_path / "in"
    src.mkdir()
    write_tar(src / "a.tar", {"x/1.jpg": b"1"})
    out = tmp_path / "out"

    assert untar.main(["--input_tars", str(src / "a.tar"), "--output_dir", str(out)]) == 0
    assert files_under(out / "_quarantine") == {"quarantine-00000-of-00001.jsonl": b""}
