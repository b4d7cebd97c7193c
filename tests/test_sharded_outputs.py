"""WebDataset and Parquet shards: one ingestion, read back by webdataset, datasets, pyarrow, DuckDB.

Every record is compared with the TFRecords of the same run and with the
labels table: same images (byte for byte), same ids and labels, same folders.
"""

from __future__ import annotations

import importlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import apache_beam as beam
import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf
import webdataset
from apache_beam.options.pipeline_options import PipelineOptions
from PIL import Image

from datathon_etl.datasets.mimic_cxr.synthetic import Sample, write_sample
from datathon_etl.framework import sharded_files
from datathon_etl.framework.flags import local_runner
from datathon_etl.framework.images import ImageFormat
from datathon_etl.framework.manifest import Manifest
from datathon_etl.framework.schema.example import Example
from datathon_etl.framework.schema.types import SCALAR_TYPES
from datathon_etl.framework.shard_formats import (
    ROW_GROUP_BYTES,
    ParquetRows,
    WebDatasetTar,
    parquet_schema,
    webdataset_key,
)
from datathon_etl.framework.sharded_files import ShardFormat, Sharding, WriteShardedFiles
from datathon_etl.framework.tfrecords.dataset import load_folder
from datathon_etl.generated.mimic_cxr import arrow_schema, features, rows
from datathon_etl.generated.mimic_cxr.ingest import main

# Hugging Face's datasets (`import datasets` finds the project's datasets/ folder for mypy).
hf_datasets: Any = importlib.import_module("datasets")

STALE = "train/frontal/data-00009-of-00010"
"""A shard an earlier run left: the run must delete it."""


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    return write_sample(
        tmp_path_factory.mktemp("sample"), images=30, full_size=1, defects=True, images_per_tar=12
    )


@pytest.fixture(scope="module")
def out(sample: Sample, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ingestion with every sharded output, in shards of about 30 kB (several per folder)."""
    out = tmp_path_factory.mktemp("out")
    for folder, suffix in (("wds", ".tar"), ("parquet", ".parquet")):
        (out / folder / STALE).parent.mkdir(parents=True)
        (out / folder / f"{STALE}{suffix}").write_bytes(b"stale")
    root = sample.tars[0].parent
    code = main(
        [
            "--input_tars",
            str(root / "*.tar"),
            "--input_csv",
            str(root / "*.csv.gz"),
            "--output_dir",
            str(out),
            "--output_tfrecord_dir",
            str(out / "tfrecords"),
            "--output_webdataset_dir",
            str(out / "wds"),
            "--output_parquet_dir",
            str(out / "parquet"),
            "--shard_mb",
            "0.03",
            "--max_bad_fraction",
            "1",
        ]
    )
    assert code == 0
    return out


def _tfrecords(out: Path) -> dict[str, tuple[str, Example[Any, Any]]]:
    """Path -> (folder, example) of every TFRecord."""
    found = {}
    for shard in sorted((out / "tfrecords").glob("*/*/*.tfrecord")):
        folder = str(shard.parent.relative_to(out / "tfrecords"))
        for record in tf.data.TFRecordDataset(str(shard)):
            example = features.decode(record.numpy())
            found[example.path] = (folder, example)
    return found


def _table(out: Path) -> dict[str, dict[str, Any]]:
    with duckdb.connect(str(out / "tables.duckdb"), read_only=True) as db:
        table = db.sql("SELECT * FROM mimic_cxr_labels").to_arrow_table().to_pylist()
    return {row["path"]: row for row in table}


def _wds(urls: str | list[str]) -> webdataset.WebDataset:
    """The shards in order; a folder without images has an empty shard."""
    return webdataset.WebDataset(urls, shardshuffle=False, empty_check=False)


def _shards(out: Path, folder: str, suffix: str) -> list[Path]:
    return sorted((out / folder).glob(f"*/*/*{suffix}"))


def test_the_manifest_lists_each_shard_with_its_records(out, sample):
    """Records per shard as each library counts them; the sum is the images written."""
    manifest = Manifest.read(str(out / "_manifest.json"))
    manifest.check()
    written = manifest.stages["images"].written
    assert written == len(sample.images)
    read = {
        "webdataset_shards": {
            str(shard.relative_to(out / "wds")): sum(1 for _ in _wds(str(shard)))
            for shard in _shards(out, "wds", ".tar")
        },
        "parquet_shards": {
            str(shard.relative_to(out / "parquet")): pq.read_table(shard).num_rows
            for shard in _shards(out, "parquet", ".parquet")
        },
    }
    for parameter, counts in read.items():
        assert manifest.parameters[parameter] == counts
        assert sum(counts.values()) == written
        assert len(counts) > len(manifest.parameters["tfrecord_shards"]) / 2  # sized, not one each
    assert sum(1 for _ in load_folder(str(out / "tfrecords"), decode_image=False)) == written
    for folder in ("wds", "parquet"):
        assert not list((out / folder).rglob(f"{STALE}*"))
        assert not (out / folder / "_staging").exists()


def test_webdataset_samples_match_the_tfrecords_and_the_table(out):
    """The webdataset library reads each image's bytes and labels row, in its TFRecord's folder."""
    tfrecords, table = _tfrecords(out), _table(out)
    seen = set()
    for shard in _shards(out, "wds", ".tar"):
        folder = str(shard.parent.relative_to(out / "wds"))
        for s in _wds(str(shard)):
            labels = json.loads(s["json"])
            path = labels["path"]
            tf_folder, example = tfrecords[path]
            assert (folder, s["__key__"], s["jpg"]) == (
                tf_folder,
                webdataset_key(path),
                example.image,
            )
            assert labels == rows.labels_row(example) == table[path]
            seen.add(path)
    assert seen == set(tfrecords) == set(table)


def test_webdataset_decodes_to_pil_images_and_labels(out):
    """The library's own decoders give PIL images and the row as a dict."""
    shards = [str(shard) for shard in _shards(out, "wds", ".tar")]
    decoded = list(_wds(shards).decode("pil"))
    assert len(decoded) == len(_table(out))
    for s in decoded:
        assert (s["jpg"].size, s["jpg"].mode) == ((320, 320), "RGB")  # the decoder's PIL mode
        assert set(s["json"]) == set(rows.ID_COLUMNS) | set(rows.LABEL_COLUMNS)


def test_parquet_rows_match_the_tfrecords_and_the_table(out):
    """Arrow reads each image's bytes and path, and every column of the labels table."""
    tfrecords, table = _tfrecords(out), _table(out)
    seen = set()
    for shard in _shards(out, "parquet", ".parquet"):
        folder = str(shard.parent.relative_to(out / "parquet"))
        for row in pq.read_table(shard).to_pylist():
            image = row.pop("jpg_bytes")
            tf_folder, example = tfrecords[row["path"]]
            assert (folder, image) == (tf_folder, {"bytes": example.image, "path": example.path})
            assert row == rows.labels_row(example) == table[row["path"]]
            seen.add(row["path"])
    assert seen == set(tfrecords)


def test_parquet_schema_is_the_labels_table_s_after_the_image(out):
    """Column names, types and nullability are the labels table's (one mapping)."""
    schema = pq.read_schema(next(iter(_shards(out, "parquet", ".parquet"))))
    assert schema.names == ["jpg_bytes", *arrow_schema.LABELS.names]
    for field in arrow_schema.LABELS:
        assert (schema.field(field.name).type, schema.field(field.name).nullable) == (
            field.type,
            field.nullable,
        )


def test_datasets_reads_the_parquet_as_pil_images_and_typed_labels(out, sample):
    """load_dataset("parquet") gives an Image feature and int64 labels, equal to the TFRecords."""
    tfrecords = _tfrecords(out)
    files = {
        split: [str(p) for p in (out / "parquet" / split).glob("*/*.parquet")]
        for split in ("train", "valid")
    }
    loaded = hf_datasets.load_dataset("parquet", data_files=files)
    assert loaded["train"].features["jpg_bytes"] == hf_datasets.Image()
    for column in rows.LABEL_COLUMNS:
        assert loaded["train"].features[column] == hf_datasets.Value("int64")
    assert sum(len(split) for split in loaded.values()) == len(sample.images)
    for split, records in loaded.items():
        for record in records:
            folder, example = tfrecords[record["path"]]
            assert folder.startswith(split)
            with Image.open(io.BytesIO(example.image)) as expected:
                assert np.array_equal(np.asarray(record["jpg_bytes"]), np.asarray(expected))
            assert {k: v for k, v in record.items() if k != "jpg_bytes"} == rows.labels_row(example)


def test_every_declared_type_is_a_typed_datasets_feature():
    """The huggingface metadata names each type table's Arrow type as datasets does."""
    labels = pa.schema([pa.field(t.name, getattr(pa, t.arrow)()) for t in SCALAR_TYPES.values()])
    schema = parquet_schema(labels, "image")
    assert hf_datasets.Features.from_arrow_schema(schema) == hf_datasets.Features(
        {"image": hf_datasets.Image()}
        | {t.name: hf_datasets.Value(t.hf_dtype) for t in SCALAR_TYPES.values()}
    )
    assert json.loads(schema.metadata[b"huggingface"])["info"]["features"] == (
        hf_datasets.Features.from_arrow_schema(schema).to_dict()
    )


def test_duckdb_reads_the_parquet_shards_as_the_labels_table(out):
    """A glob over the shards in DuckDB is the labels table, plus the image bytes."""
    shards = f"read_parquet('{out}/parquet/*/*/*.parquet')"
    with duckdb.connect(str(out / "tables.duckdb"), read_only=True) as db:
        difference = db.sql(
            f"""
            (SELECT * EXCLUDE (jpg_bytes) FROM {shards} EXCEPT ALL SELECT * FROM mimic_cxr_labels)
            UNION ALL
            (SELECT * FROM mimic_cxr_labels EXCEPT ALL SELECT * EXCLUDE (jpg_bytes) FROM {shards})
            """
        ).fetchall()
        paths = db.sql(
            f"SELECT count(*) FROM {shards} "
            "WHERE jpg_bytes.path = path AND octet_length(jpg_bytes.bytes) > 0"
        ).fetchall()
        total = db.sql("SELECT count(*) FROM mimic_cxr_labels").fetchall()
    assert difference == []
    assert paths == total


def _examples(count: int) -> list[Example[Any, Any]]:
    images = []
    for n in range(count):
        buffer = io.BytesIO()
        Image.new("L", (8, 8), color=n * 20).save(buffer, format="JPEG")
        images.append(Example(buffer.getvalue(), f"train/p{n}/s01/view1.frontal.jpg", n, None))
    return images


def _row(example: Example[Any, Any]) -> dict[str, Any]:
    return {"patient": example.key, "path": example.path}


_SCHEMA = pa.schema([pa.field("patient", pa.int64(), nullable=False), ("path", pa.string())])


def _read_tar(path: Path) -> list[tuple[int, bytes]]:
    return [(json.loads(s["json"])["patient"], s["jpg"]) for s in _wds(str(path))]


def _read_parquet(path: Path) -> list[tuple[int, bytes]]:
    return [(r["patient"], r["jpg_bytes"]["bytes"]) for r in pq.read_table(path).to_pylist()]


@pytest.mark.parametrize(
    ("format", "read"),
    [
        (WebDatasetTar(ImageFormat.JPEG, _row), _read_tar),
        (ParquetRows(parquet_schema(_SCHEMA, "jpg_bytes"), _row), _read_parquet),
    ],
    ids=["webdataset", "parquet"],
)
@pytest.mark.parametrize("pieces", [0, 1, 3])
def test_joined_pieces_read_back_as_one_shard(
    tmp_path: Path,
    format: ShardFormat,
    read: Callable[[Path], list[tuple[int, bytes]]],
    pieces: int,
) -> None:
    """--num_shards joins a shard's pieces: the library reads every record once (none: empty)."""
    examples = _examples(3 * pieces)
    paths = []
    for n in range(pieces):
        path = tmp_path / f"piece{n}{format.suffix}"
        with path.open("wb") as f:
            writer = format.open(f)
            for example in examples[3 * n : 3 * n + 3]:
                assert writer.write(example) >= len(example.image)
            writer.end()
        paths.append(str(path))
    joined = tmp_path / f"joined{format.suffix}"
    with joined.open("wb") as f:
        format.join(paths, f)
    assert read(joined) == [(e.key, e.image) for e in examples]


def test_parquet_pieces_open_at_once_are_bounded_by_their_buffers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Few Parquet pieces open at once (row groups wait in memory): every row still lands once."""
    monkeypatch.setattr(sharded_files, "FORMAT_BUFFERS", 2 * ROW_GROUP_BYTES)  # 2 open at most
    examples = _examples(12)
    pairs = [(("a/data", "b/data", "c/data")[n % 3], e) for n, e in enumerate(examples)]
    write = WriteShardedFiles(
        str(tmp_path),
        str(tmp_path / "_staging"),
        prefix=lambda pair: pair[0],
        format=ParquetRows(parquet_schema(_SCHEMA, "jpg_bytes"), _row),
        prefixes=["a/data", "b/data", "c/data"],
        sharding=Sharding(shards=2),
    )
    options = PipelineOptions()
    with beam.Pipeline(runner=local_runner(options), options=options) as p:
        _ = p | beam.Create(pairs, reshuffle=False) | write

    for folder in "abc":
        files = sorted((tmp_path / folder).glob("data-*.parquet"))
        assert [f.name for f in files] == [f"data-0000{n}-of-00002.parquet" for n in range(2)]
        found = sorted(r["patient"] for f in files for r in pq.read_table(f).to_pylist())
        assert found == [e.key for k, e in pairs if k == f"{folder}/data"]
