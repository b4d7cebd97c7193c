"""TFRecord shards of a size (--tfrecord_shard_mb) or count (--num_shards), each record once.

The MIMIC-CXR ingestion writes a small sample in each local mode that spreads
work differently (one bundle, several worker processes) and on gs:// (the
emulator); each shard is then read back: every image once, through the
generated reader where the files are local, in shards named
``data-SSSSS-of-NNNNN`` numbered over their folder, listed in the manifest.
"""

from __future__ import annotations

import re
import struct
from collections import Counter
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from datathon_etl.datasets.mimic_cxr.parsing import PARTITIONS, parse_path, partition
from datathon_etl.datasets.mimic_cxr.synthetic import Sample, write_sample
from datathon_etl.framework import sharded_files
from datathon_etl.framework.flags import local_runner
from datathon_etl.framework.manifest import Manifest
from datathon_etl.framework.sharded_files import Records, Sharding, WriteShardedFiles
from datathon_etl.generated.mimic_cxr import features
from datathon_etl.generated.mimic_cxr.ingest import main
from tests.emulators import GcsHandle
from tests.pipeline_outputs import read_bytes

MODES = ["in_memory", "multi_processing"]
SHARD_MB = 0.05  # a few records per shard
SHARD_NAME = re.compile(r"data-(\d{5})-of-(\d{5})\.tfrecord")


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    return write_sample(
        tmp_path_factory.mktemp("sample"), images=48, full_size=0, images_per_tar=12
    )


def _ingest(sample: Sample, out: str, tfrecords: str, *extra: str) -> int:
    root = sample.tars[0].parent
    return main(
        [
            "--input_tars",
            str(root / "*.tar"),
            "--input_csv",
            str(root / "*.csv.gz"),
            "--output_dir",
            out,
            "--output_tfrecord_dir",
            tfrecords,
            *extra,
        ]
    )


def _records(data: bytes) -> list[bytes]:
    """The records of one TFRecord file (length, CRC, data, CRC each)."""
    records, at = [], 0
    while at < len(data):
        (length,) = struct.unpack_from("<Q", data, at)
        records.append(data[at + 12 : at + 12 + length])
        at += length + 16
    assert at == len(data)
    return records


def _folders(root: str) -> dict[str, dict[str, bytes]]:
    """Folder -> shard file name -> bytes, for every shard under ``root``."""
    (found,) = FileSystems.match([f"{root}/**.tfrecord"])
    folders: dict[str, dict[str, bytes]] = {}
    for metadata in found.metadata_list:
        folder, _, name = metadata.path[len(root) + 1 :].rpartition("/")
        folders.setdefault(folder, {})[name] = read_bytes(metadata.path)
    return folders


def _check_names(shards: dict[str, bytes]) -> int:
    """The names are ``data-SSSSS-of-NNNNN``, 0 to N-1 with one N; returns N."""
    numbers = [SHARD_NAME.fullmatch(name) for name in shards]
    assert all(numbers), sorted(shards)
    total = {int(m.group(2)) for m in numbers if m}
    assert len(total) == 1, sorted(shards)
    (n,) = total
    assert sorted(int(m.group(1)) for m in numbers if m) == list(range(n))
    return n


def _expected(sample: Sample) -> dict[str, str]:
    """Image path -> its folder (split/view)."""
    return {path: partition(parse_path(path)) for path in sample.images}


def _check_every_record_once(sample: Sample, out: str, tfrecords: str) -> None:
    """Each image in one record of its folder's shards; the manifest lists every shard."""
    folders = _folders(tfrecords)
    assert set(folders) == set(PARTITIONS)
    paths: Counter[str] = Counter()
    where = {}
    for folder, shards in folders.items():
        for data in shards.values():
            for record in _records(data):
                path = features.decode(record).path
                paths[path] += 1
                where[path] = folder
    assert paths == Counter(list(_expected(sample)))
    assert where == _expected(sample)
    manifest = Manifest.read(f"{out}/_manifest.json")
    listed = manifest.parameters["tfrecord_shards"]
    assert listed == {
        f"{folder}/{name}": len(_records(data))
        for folder, shards in folders.items()
        for name, data in shards.items()
    }
    (staging,) = FileSystems.match([f"{tfrecords}/_staging/**"])
    assert not staging.metadata_list


@pytest.mark.parametrize("mode", MODES)
def test_shards_roll_over_at_the_size_then_a_rerun_makes_exactly_n(
    sample: Sample, tmp_path: Path, mode: str
) -> None:
    """--tfrecord_shard_mb: a shard closes at the first record that takes it past the size.

    A re-run into the same folder with --num_shards 3 leaves exactly three
    shards per folder (a folder without images three empty ones): no shard
    of the first run survives.
    """
    out, tfrecords = str(tmp_path / "out"), str(tmp_path / "out" / "tfrecords")
    local = f"--direct_running_mode={mode}"
    assert _ingest(sample, out, tfrecords, local, f"--tfrecord_shard_mb={SHARD_MB}") == 0
    _check_every_record_once(sample, out, tfrecords)
    limit = SHARD_MB * 1_000_000
    folders = _folders(tfrecords)
    for shards in folders.values():
        _check_names(shards)
        for data in shards.values():
            records = _records(data)
            # Under the size before its last record (16 bytes of framing each).
            assert len(data) - len(records[-1]) - 16 < limit if records else data == b""
    assert max(len(shards) for shards in folders.values()) >= 3
    pattern = f"{tfrecords}/*/*/*.tfrecord"
    read_back = Counter(bytes(e["path"].numpy()).decode() for e in features.load_dataset(pattern))
    assert read_back == Counter(list(_expected(sample)))

    assert _ingest(sample, out, tfrecords, local, "--num_shards=3") == 0
    _check_every_record_once(sample, out, tfrecords)
    assert {folder: _check_names(shards) for folder, shards in _folders(tfrecords).items()} == {
        folder: 3 for folder in folders
    }


def test_num_shards_on_gcs(gcs: GcsHandle, sample: Sample, tmp_path: Path) -> None:
    """gs:// TFRecords: pieces joined in the bucket into exactly N shards, then by size."""
    tfrecords = f"{gcs.bucket()}/tfrecords"
    out = str(tmp_path / "out")
    assert _ingest(sample, out, tfrecords, "--runner=FnApiRunner", "--num_shards=4") == 0
    _check_every_record_once(sample, out, tfrecords)
    assert {_check_names(shards) for shards in _folders(tfrecords).values()} == {4}

    sized = f"--tfrecord_shard_mb={SHARD_MB}"
    assert _ingest(sample, out, tfrecords, "--runner=FnApiRunner", sized) == 0
    _check_every_record_once(sample, out, tfrecords)
    assert max(_check_names(shards) for shards in _folders(tfrecords).values()) >= 3


@pytest.mark.parametrize(
    "flags",
    [
        ["--tfrecord_shard_mb=0"],
        ["--tfrecord_shard_mb=-1"],
        ["--num_shards=0"],
        ["--num_shards=2.5"],
        ["--num_shards=2", "--tfrecord_shard_mb=10"],
    ],
)
def test_bad_shard_flags_are_usage_errors(
    sample: Sample, tmp_path: Path, flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A size or count that is not positive, or both at once: exit 2 before anything runs."""
    out = tmp_path / "out"
    assert _ingest(sample, str(out), str(out / "tfrecords"), *flags) == 2
    err = capsys.readouterr().err
    assert flags[0].split("=")[0] in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_more_shards_than_open_files_are_written_in_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(prefix, shard) pairs beyond the open files a bundle may hold: still N files, lines once."""
    monkeypatch.setattr(sharded_files, "OPEN_LOCAL_FILES", 4)
    prefixes = ["a/part", "b/part", "c/part"]
    lines = [(prefixes[n % 3], f"line {n}") for n in range(1000)]
    write = WriteShardedFiles(
        str(tmp_path),
        str(tmp_path / "_staging"),
        prefix=lambda pair: pair[0],
        format=Records(".txt", lambda f, line: f.write(line.encode() + b"\n")),
        prefixes=[*prefixes, "d/part"],  # d gets no line
        sharding=Sharding(shards=5),
    )
    options = PipelineOptions()
    with beam.Pipeline(runner=local_runner(options), options=options) as p:
        _ = p | beam.Create(lines, reshuffle=False) | write

    for prefix in [*prefixes, "d/part"]:
        files = sorted((tmp_path / prefix).parent.glob("part-*.txt"))
        assert [f.name for f in files] == [f"part-{n:05d}-of-00005.txt" for n in range(5)]
        found = Counter(line for f in files for line in f.read_text().splitlines())
        assert found == Counter(line for key, line in lines if key == prefix)
        if prefix != "d/part":
            assert all(f.stat().st_size for f in files)  # spread over all five


def _no_record(file: object, record: object) -> None:
    raise AssertionError("the finish step writes no record")


@pytest.mark.parametrize("sharding", [Sharding(), Sharding(max_bytes=10), Sharding(shards=3)])
def test_a_retried_finish_step_finds_its_work_done(tmp_path: Path, sharding: Sharding) -> None:
    """The finish step of a prefix run twice (a retried bundle) leaves the same files."""
    staging = tmp_path / "_staging"
    staging.mkdir()
    pieces = []
    for n in range(4):
        (staging / f"{n}.txt").write_text(f"piece {n}\n")
        pieces.append((n % 3 if sharding.shards else -1, str(staging / f"{n}.txt")))
    finish = sharded_files._FinishPrefixFn(str(tmp_path), Records(".txt", _no_record), sharding)
    element = ("out/part", [*pieces, None])

    first = list(finish.process(element))
    files = {path: Path(path).read_text() for path in first}
    assert list(finish.process(element)) == first
    assert {path: Path(path).read_text() for path in first} == files
    assert sorted("".join(files.values()).splitlines()) == [f"piece {n}" for n in range(4)]
    assert not list(staging.iterdir())
