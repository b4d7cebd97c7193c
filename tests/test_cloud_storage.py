"""Beam's gs:// filesystem against a real local fake-gcs-server (the ``gcs`` fixture).

What pipelines on Dataflow do to GCS: write, glob, ranged reads, rename and
delete, and file sinks that finalize by renaming their temporary shards.
"""

from __future__ import annotations

import os
import random

import apache_beam as beam
import pytest
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
from google.cloud import storage

from tests.emulators import GcsHandle

pytestmark = pytest.mark.emulators


def _write(path: str, data: bytes) -> None:
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        handle.write(data)


def _read(path: str) -> bytes:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        data: bytes = handle.read()
        return data


def _listing(pattern: str) -> dict[str, int]:
    (result,) = FileSystems.match([pattern])
    return {metadata.path: metadata.size_in_bytes for metadata in result.metadata_list}


def test_write_glob_read(gcs: GcsHandle) -> None:
    """Written objects are listed by a glob with their sizes, and read back whole."""
    bucket = gcs.bucket()
    files = {
        f"{bucket}/images/p10/a.jpg": b"a" * 10,
        f"{bucket}/images/p10/b.jpg": b"b" * 2_000,
        f"{bucket}/images/p11/c.jpg": b"",
        f"{bucket}/labels.csv": b"path,edema\n",
    }
    for path, data in files.items():
        _write(path, data)
    assert _listing(f"{bucket}/images/p10/*.jpg") == {
        f"{bucket}/images/p10/a.jpg": 10,
        f"{bucket}/images/p10/b.jpg": 2_000,
    }
    assert set(_listing(f"{bucket}/images/**")) == {p for p in files if "/images/" in p}
    assert _listing(f"{bucket}/nothing/*") == {}
    assert all(_read(path) == data for path, data in files.items())
    assert FileSystems.exists(f"{bucket}/labels.csv")
    assert not FileSystems.exists(f"{bucket}/missing.csv")
    # Another client sees the same objects (not just Beam's own view).
    client = storage.Client()
    names = sorted(blob.name for blob in client.list_blobs(bucket.removeprefix("gs://")))
    assert names == sorted(p.removeprefix(f"{bucket}/") for p in files)


def test_ranged_read(gcs: GcsHandle) -> None:
    """Seek + read returns exactly the requested byte range, as reading tar members does."""
    bucket = gcs.bucket()
    data = random.Random(7).randbytes(3 * 1024 * 1024 + 17)
    path = f"{bucket}/archive.tar"
    _write(path, data)
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        for offset, size in [(0, 512), (1_500_000, 4_096), (len(data) - 100, 100), (512, 1)]:
            handle.seek(offset)
            assert handle.read(size) == data[offset : offset + size]
            assert handle.tell() == offset + size
        handle.seek(len(data) - 10)
        assert handle.read(1_000) == data[-10:]  # short read at the end
        assert handle.read(1) == b""


def test_rename_and_delete(gcs: GcsHandle) -> None:
    """Rename moves objects (batched copy + delete); delete removes files and folders."""
    bucket = gcs.bucket()
    sources = [f"{bucket}/tmp/shard-{i}" for i in range(5)]
    destinations = [f"{bucket}/out/part-{i}" for i in range(5)]
    for index, path in enumerate(sources):
        _write(path, f"shard {index}".encode())
    FileSystems.rename(sources, destinations)
    assert _listing(f"{bucket}/tmp/*") == {}
    assert [_read(path) for path in destinations] == [f"shard {i}".encode() for i in range(5)]
    FileSystems.delete(destinations[:2])
    assert sorted(_listing(f"{bucket}/out/*")) == destinations[2:]
    FileSystems.delete([f"{bucket}/out/"])  # a "folder": everything under the prefix
    assert _listing(f"{bucket}/out/*") == {}


def _no_temp_files(bucket: str) -> bool:
    return not any("beam-temp" in path for path in _listing(f"{bucket}/**"))


def test_write_to_text_finalizes(gcs: GcsHandle) -> None:
    """WriteToText to gs:// renames its temporary shards into place and cleans up."""
    bucket = gcs.bucket()
    lines = [f"line {i}" for i in range(100)]
    prefix = f"{bucket}/text/out"
    with BeamTestPipeline(runner="FnApiRunner") as p:
        _ = p | beam.Create(lines) | beam.io.WriteToText(prefix, ".txt", num_shards=3)
    shards = sorted(_listing(f"{prefix}-*.txt"))
    assert shards == [f"{prefix}-0000{i}-of-00003.txt" for i in range(3)]
    written = [line for shard in shards for line in _read(shard).decode().splitlines()]
    assert sorted(written) == sorted(lines)
    assert _no_temp_files(bucket)


def test_write_to_tfrecord_finalizes_and_reads_back(gcs: GcsHandle) -> None:
    """WriteToTFRecord to gs:// finalizes; ReadFromTFRecord reads the same records back."""
    bucket = gcs.bucket()
    records = [os.urandom(64) + bytes([i]) for i in range(50)]
    prefix = f"{bucket}/tfrecords/train"
    with BeamTestPipeline(runner="FnApiRunner") as p:
        _ = (
            p
            | beam.Create(records)
            | beam.io.WriteToTFRecord(prefix, file_name_suffix=".tfrecord.gz", num_shards=2)
        )
    assert sorted(_listing(f"{prefix}-*")) == [
        f"{prefix}-0000{i}-of-00002.tfrecord.gz" for i in range(2)
    ]
    assert _no_temp_files(bucket)
    with BeamTestPipeline(runner="FnApiRunner") as p:
        read = p | beam.io.ReadFromTFRecord(f"{prefix}-*.tfrecord.gz")
        assert_that(read, equal_to(records))
