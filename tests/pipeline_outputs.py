"""Reads a pipeline run's outputs, local or gs://, into plain values to compare runs.

Two runs of the same inputs (locally and on the emulators, in one process or
in several) must agree on every output; these helpers read what a run wrote
through Beam's FileSystems, so the same code reads a local folder and a
``gs://`` prefix. Bytes are summarised by their SHA-256, so that a mismatch
prints readable digests rather than images.
"""

from __future__ import annotations

import enum
import hashlib
import importlib
import io
import json
import struct
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from google.cloud import bigquery as bq

from datathon_etl.framework.manifest import Manifest
from datathon_etl.framework.schema import Table

__all__ = [
    "assert_decoded",
    "bigquery_table",
    "bigquery_view",
    "digest",
    "duckdb_table",
    "manifest_stages",
    "parquet_by_folder",
    "quarantine_records",
    "read_bytes",
    "read_tree",
    "tfrecords_by_folder",
    "upload",
    "webdataset_by_folder",
]

_UNCOMPRESSED = CompressionTypes.UNCOMPRESSED


def upload(local: Path, uri: str) -> str:
    """Copies a local file to ``uri`` byte for byte (no compression by suffix)."""
    with FileSystems.create(uri, compression_type=_UNCOMPRESSED) as f:
        f.write(local.read_bytes())
    return uri


def read_bytes(uri: str) -> bytes:
    """The bytes of one file, local or gs://."""
    with FileSystems.open(uri, compression_type=_UNCOMPRESSED) as f:
        data: bytes = f.read()
    return data


def digest(data: bytes) -> str:
    """A short stand-in for bytes in assertion messages."""
    return hashlib.sha256(data).hexdigest()[:16]


def read_tree(root: str, *, exclude: Iterable[str] = ()) -> dict[str, bytes]:
    """Relative path -> bytes of every file under ``root`` (local folder or gs:// prefix).

    Args:
        root: The folder or prefix, without a trailing slash.
        exclude: Leading path components to leave out (e.g. ``_quarantine``).
    """
    skipped = tuple(exclude)
    (result,) = FileSystems.match([f"{root}/**"])
    tree = {}
    for metadata in result.metadata_list:
        relative = metadata.path[len(root) + 1 :]
        if relative.split("/", 1)[0] in skipped:
            continue
        tree[relative] = read_bytes(metadata.path)
    return tree


def _records(data: bytes) -> list[bytes]:
    """Splits a TFRecord file: [length u64][crc u32][data][crc u32] per record."""
    records, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack_from("<Q", data, offset)
        offset += 12
        records.append(data[offset : offset + length])
        offset += length + 4
    return records


def _canonical(record: bytes) -> bytes:
    """A ``tf.train.Example`` serialised with its feature map in key order.

    Protobuf writes map entries in an order that may differ between
    processes, so the same example can be different bytes when another
    worker process wrote it.
    """
    from tensorflow.core.example import example_pb2

    example = example_pb2.Example.FromString(record)
    canonical: bytes = example.SerializeToString(deterministic=True)
    return canonical


def tfrecords_by_folder(root: str) -> dict[str, list[str]]:
    """Folder under ``root`` -> digests of its examples, sorted (shard counts may differ).

    Each record is a ``tf.train.Example``, compared in canonical form.
    """
    (result,) = FileSystems.match([f"{root}/**.tfrecord"])
    found: dict[str, list[str]] = {}
    for metadata in result.metadata_list:
        folder = metadata.path[len(root) + 1 :].rpartition("/")[0]
        found.setdefault(folder, []).extend(
            digest(_canonical(record)) for record in _records(read_bytes(metadata.path))
        )
    return {folder: sorted(records) for folder, records in sorted(found.items())}


def _by_folder(root: str, suffix: str) -> dict[str, list[bytes]]:
    """Folder under ``root`` -> the bytes of each of its ``*<suffix>`` files."""
    (result,) = FileSystems.match([f"{root}/**{suffix}"])
    found: dict[str, list[bytes]] = {}
    for metadata in result.metadata_list:
        folder = metadata.path[len(root) + 1 :].rpartition("/")[0]
        found.setdefault(folder, []).append(read_bytes(metadata.path))
    return found


def webdataset_by_folder(root: str) -> dict[str, list[str]]:
    """Folder under ``root`` -> digests of its WebDataset samples (members in order), sorted."""
    found = {}
    for folder, shards in sorted(_by_folder(root, ".tar").items()):
        samples: dict[str, list[bytes]] = {}
        for data in shards:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tar:
                for member in tar:
                    f = tar.extractfile(member)
                    assert f is not None, member.name
                    key = member.name.split(".", 1)[0]
                    samples.setdefault(key, []).extend([member.name.encode(), f.read()])
        found[folder] = sorted(digest(b"\0".join(parts)) for parts in samples.values())
    return found


def parquet_by_folder(root: str) -> dict[str, list[str]]:
    """Folder under ``root`` -> digests of its Parquet rows (every column), sorted."""
    found = {}
    for folder, shards in sorted(_by_folder(root, ".parquet").items()):
        rows = [row for data in shards for row in pq.read_table(io.BytesIO(data)).to_pylist()]
        found[folder] = sorted(digest(repr(sorted(row.items())).encode()) for row in rows)
    return found


def manifest_stages(output_dir: str) -> dict[str, Any]:
    """The manifest's pipeline name and per-stage counts (not its parameters: paths differ)."""
    manifest = Manifest.read(f"{output_dir}/_manifest.json")
    manifest.check()
    data = manifest.to_dict()
    return {"pipeline": data["pipeline"], "stages": data["stages"]}


def quarantine_records(output_dir: str, locations: Mapping[str, str]) -> list[dict[str, Any]]:
    """The quarantine's records, sorted, input locations replaced in ``source`` and ``detail``.

    Args:
        output_dir: The run's ``--output_dir``.
        locations: Text to replace (e.g. the inputs' folder or
            bucket) -> what to put instead, so that runs over copies of the
            same inputs in different places compare equal.
    """
    records = []
    for relative, data in read_tree(f"{output_dir}/_quarantine").items():
        assert relative.endswith(".jsonl"), relative
        for line in data.decode("utf-8").splitlines():
            record = json.loads(line)
            for field in ("source", "detail"):
                for old, new in locations.items():
                    record[field] = record[field].replace(old, new)
            records.append(record)
    return sorted(records, key=lambda r: json.dumps(r, sort_keys=True))


def duckdb_table(database: str | Path, table: str) -> pa.Table:
    """A DuckDB table, sorted by ``path``."""
    with duckdb.connect(str(database), read_only=True) as con:
        return con.sql(f"SELECT * FROM {table} ORDER BY path").to_arrow_table()


def bigquery_table(client: bq.Client, table: str) -> pa.Table:
    """A BigQuery table (``project.dataset.table``), sorted by ``path``."""
    return client.list_rows(table).to_arrow().sort_by("path")


def bigquery_view(client: bq.Client, view: str) -> pa.Table:
    """A BigQuery view's rows (``project.dataset.view``), sorted by ``path``.

    Queried: a view has no rows to list.
    """
    return client.query(f"SELECT * FROM `{view}` ORDER BY path").to_arrow()


def assert_decoded(decoded: pa.Table, coded: pa.Table, declared: Table) -> None:
    """The decoded view holds the coded table's rows, each code as its enum member's name.

    The names come from the declaration's enum classes themselves, not from
    the generated schema the view was made from; NULL stays NULL. Both
    tables sorted alike.
    """
    assert decoded.schema.names == coded.schema.names == [c.name for c in declared.columns]
    enums: dict[str, type[enum.IntEnum]] = {
        c.name: getattr(importlib.import_module(c.enum.module), c.enum.name)
        for c in declared.columns
        if c.enum is not None
    }
    assert enums, f"{declared.name} has no coded column"
    assert decoded.num_rows == coded.num_rows > 0
    for index, (view_row, row) in enumerate(
        zip(decoded.to_pylist(), coded.to_pylist(), strict=True)
    ):
        expected = {
            name: value if name not in enums or value is None else enums[name](value).name.lower()
            for name, value in row.items()
        }
        assert view_row == expected, f"row {index} ({row['path']})"
