"""WebDataset tars and Hugging Face Parquet: shard formats for PyTorch users.

Both are written by `datathon_etl.framework.sharded_files.WriteShardedFiles`
like the TFRecords, and hold the same images with the labels table's row
(one mapping of declarations to columns: `IngestSpec.labels_row`):

- `WebDatasetTar`: per image ``<key>.jpg`` (or ``.png``) and ``<key>.json``
  (the row), as the ``webdataset`` and ``wids`` libraries group them: the
  key is the image's path less its extension, dots made ``_`` (a WebDataset
  key ends at the first dot of the file name).
- `ParquetRows`: the image as Hugging Face's ``Image`` feature (a struct
  ``{bytes, path}``) beside every column of the labels table, with the
  ``huggingface`` schema metadata ``datasets`` reads its features from
  (PIL images, typed labels); plain Parquet to DuckDB, pyarrow and Polars.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from collections.abc import Callable, Sequence
from typing import Any

import apache_beam as beam
import attrs
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from datathon_etl.framework.command import ShardedOutput
from datathon_etl.framework.errors import UsageError
from datathon_etl.framework.images import ImageFormat
from datathon_etl.framework.manifest import PARQUET_SHARDS, WEBDATASET_SHARDS
from datathon_etl.framework.schema.example import Example
from datathon_etl.framework.schema.types import SCALAR_TYPES
from datathon_etl.framework.sharded_files import COPY_BUFFER, Counting, ShardFormat, Writable
from datathon_etl.framework.tfrecords.options import tfrecord_sharding
from datathon_etl.framework.tfrecords.shards import WriteShards, staging_dir

__all__ = [
    "ParquetRows",
    "WebDatasetTar",
    "WriteShardedOutputs",
    "count_parquet_rows",
    "count_tar_samples",
    "parquet_schema",
    "sharded_outputs",
    "webdataset_key",
]

TAR_BLOCK = 512
TAR_END = bytes(2 * TAR_BLOCK)
"""A tar's end: two zero blocks (no padding to a 10 KiB record: readers do not need it)."""
ROW_GROUP_ROWS = 100
"""Rows per Parquet row group, as Hugging Face ``datasets`` writes image data sets."""
ROW_GROUP_BYTES = 8 << 20
"""A row group is written sooner once its images hold this many bytes (bounds memory)."""
_HF_DTYPES = {getattr(pa, t.arrow)(): t.hf_dtype for t in SCALAR_TYPES.values()}
"""Arrow types of the declared fields -> Hugging Face ``Value`` dtypes (the one type table)."""


def webdataset_key(path: str) -> str:
    """An image's WebDataset key: its path less the extension, dots made ``_``."""
    stem, _ = posixpath.splitext(path)
    folder, name = posixpath.split(stem)
    return posixpath.join(folder, name.replace(".", "_"))


def _extension(image_format: ImageFormat) -> str:
    return "jpg" if image_format is ImageFormat.JPEG else "png"


@attrs.frozen
class WebDatasetTar(ShardFormat):
    """Tar shards of ``(<key>.jpg|png, <key>.json)`` pairs; payloads are examples.

    Attributes:
        image_format: The images' format, which names their members.
        row: Example -> the labels table's row, written as the JSON member.
    """

    image_format: ImageFormat
    row: Callable[[Example[Any, Any]], dict[str, Any]]
    suffix: str = ".tar"

    def open(self, file: Writable) -> _TarWriter:
        """Starts a tar in ``file``."""
        return _TarWriter(file, self)

    def join(self, pieces: Sequence[str], out: Writable) -> None:
        """Concatenates the pieces less their ends, then one end."""
        for piece in pieces:
            with FileSystems.open(piece, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                held = b""
                while chunk := f.read(COPY_BUFFER):
                    held += chunk
                    out.write(held[: -len(TAR_END)])
                    held = held[-len(TAR_END) :]
            if held != TAR_END:
                raise ValueError(f"{piece}: not a tar this writer ended")
        out.write(TAR_END)


class _TarWriter:
    """Writes tar members by hand: two per example, fixed metadata (the same bytes every run)."""

    def __init__(self, file: Writable, format: WebDatasetTar) -> None:
        self._file = file
        self._format = format
        self._extension = _extension(format.image_format)

    def write(self, example: Example[Any, Any]) -> int:
        key = webdataset_key(example.path)
        row = json.dumps(self._format.row(example), separators=(",", ":")).encode("utf-8")
        return self._member(f"{key}.{self._extension}", example.image) + self._member(
            f"{key}.json", row
        )

    def end(self) -> None:
        self._file.write(TAR_END)

    def _member(self, name: str, data: bytes) -> int:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o444
        header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        padding = -len(data) % TAR_BLOCK
        self._file.write(header)
        self._file.write(data)
        self._file.write(bytes(padding))
        return len(header) + len(data) + padding


def parquet_schema(labels: pa.Schema, image_column: str) -> pa.Schema:
    """The Parquet shards' schema: the image, then the labels table's columns.

    The ``huggingface`` metadata makes ``datasets`` read the image column as
    an ``Image`` feature and each other column as a ``Value`` of its type.
    """
    image = pa.field(
        image_column,
        pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
        # Never null, but datasets takes a feature from the metadata only if
        # its field is the one it would write, and it writes nullable fields.
        metadata={"description": "The encoded image and its path relative to the data set."},
    )
    features: dict[str, Any] = {image_column: {"_type": "Image"}}
    for field in labels:
        features[field.name] = {"dtype": _HF_DTYPES[field.type], "_type": "Value"}
    metadata = {
        **(labels.metadata or {}),
        b"huggingface": json.dumps({"info": {"features": features}}).encode("utf-8"),
    }
    return pa.schema([image, *labels], metadata=metadata)


@attrs.frozen
class ParquetRows(ShardFormat):
    """Parquet shards of the image and the labels row; payloads are examples.

    Attributes:
        schema: `parquet_schema`'s result.
        row: Example -> the labels table's row.
    """

    schema: pa.Schema
    row: Callable[[Example[Any, Any]], dict[str, Any]]
    suffix: str = ".parquet"
    buffer_bytes: int = ROW_GROUP_BYTES

    @property
    def image_column(self) -> str:
        """The image's column (the first)."""
        name: str = self.schema.names[0]
        return name

    def open(self, file: Writable) -> _ParquetWriter:
        """Starts a Parquet file in ``file``."""
        return _ParquetWriter(file, self)

    def join(self, pieces: Sequence[str], out: Writable) -> None:
        """Copies every piece's row groups into one file."""
        writer = _parquet_writer(out, self.schema)
        for piece in pieces:
            with FileSystems.open(piece, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                source = pq.ParquetFile(f)
                for group in range(source.num_row_groups):
                    writer.write_table(source.read_row_group(group))
        writer.close()


class _Sink(Counting):
    """``file`` as pyarrow wants a sink; closing it stays the caller's job.

    pyarrow asks a sink where it is (``tell``: Beam's object store writers
    may not say) and whether it is closed.
    """

    closed = False

    def flush(self) -> None:
        """Nothing: the caller's file flushes when closed."""

    def close(self) -> None:
        """Marks the sink closed; the file stays open."""
        self.closed = True


def _parquet_writer(file: Writable, schema: pa.Schema) -> pq.ParquetWriter:
    return pq.ParquetWriter(pa.PythonFile(_Sink(file), mode="w"), schema)


class _ParquetWriter:
    """Buffers rows into row groups; the footer is written at the end."""

    def __init__(self, file: Writable, format: ParquetRows) -> None:
        self._format = format
        self._writer = _parquet_writer(file, format.schema)
        self._rows: list[dict[str, Any]] = []
        self._bytes = 0

    def write(self, example: Example[Any, Any]) -> int:
        row = self._format.row(example)
        row[self._format.image_column] = {"bytes": example.image, "path": example.path}
        self._rows.append(row)
        self._bytes += len(example.image)
        if len(self._rows) >= ROW_GROUP_ROWS or self._bytes >= ROW_GROUP_BYTES:
            self._flush()
        return len(example.image) + 8 * len(row)  # labels: a few bytes each, compressed

    def end(self) -> None:
        self._flush()
        self._writer.close()

    def _flush(self) -> None:
        if self._rows:
            table = pa.Table.from_pylist(self._rows, schema=self._format.schema)
            self._writer.write_table(table, row_group_size=len(self._rows))
        self._rows, self._bytes = [], 0


def count_tar_samples(uri: str) -> int:
    """Samples (``.json`` members) in one WebDataset tar."""
    with (
        FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as f,
        tarfile.open(fileobj=f, mode="r|") as tar,
    ):
        return sum(1 for member in tar if member.name.endswith(".json"))


def count_parquet_rows(uri: str) -> int:
    """Rows in one Parquet file, from its footer."""
    with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        rows: int = pq.ParquetFile(f).metadata.num_rows
    return rows


def sharded_outputs(
    webdataset_dir: str | None,
    parquet_dir: str | None,
    folders: Sequence[str],
    *,
    image_format: ImageFormat,
    labels_schema: pa.Schema,
    labels_row: Callable[[Example[Any, Any]], dict[str, Any]],
    image_column: str,
) -> tuple[ShardedOutput, ...]:
    """The WebDataset and Parquet outputs asked for (``--output_webdataset_dir``, ...).

    Args:
        webdataset_dir: Where the tars go, if wanted.
        parquet_dir: Where the Parquet files go, if wanted.
        folders: The folders under each that get shards (the TFRecords').
        image_format: The images' format.
        labels_schema: The labels table's schema.
        labels_row: Example -> its labels table row.
        image_column: The Parquet image column's name (the TFRecords' image feature).

    Raises:
        UsageError: A WebDataset is asked for, but a labels column holds bytes
            (JSON has no bytes).
    """
    outputs = []
    binary = [field.name for field in labels_schema if pa.types.is_binary(field.type)]
    if webdataset_dir and binary:
        raise UsageError(
            f"--output_webdataset_dir: column(s) {', '.join(binary)} hold bytes, which the "
            "JSON of a WebDataset sample cannot; use --output_parquet_dir instead"
        )
    if webdataset_dir:
        tar = WebDatasetTar(image_format, labels_row)
        outputs.append(
            ShardedOutput(
                "WebDataset",
                webdataset_dir,
                tuple(folders),
                tar,
                count_tar_samples,
                WEBDATASET_SHARDS,
            )
        )
    if parquet_dir:
        rows = ParquetRows(parquet_schema(labels_schema, image_column), labels_row)
        outputs.append(
            ShardedOutput(
                "Parquet", parquet_dir, tuple(folders), rows, count_parquet_rows, PARQUET_SHARDS
            )
        )
    return tuple(outputs)


class WriteShardedOutputs(beam.PTransform):
    """Examples -> each of ``outputs``' shards, in the folder ``folder_of`` names.

    Args:
        outputs: `sharded_outputs`' result.
        run_id: The run's id: the staging folders' name.
        folder_of: Example -> its folder, one of each output's folders (picklable).
    """

    def __init__(
        self,
        outputs: Sequence[ShardedOutput],
        run_id: str,
        folder_of: Callable[[Example[Any, Any]], str],
    ) -> None:
        super().__init__()
        self._outputs = outputs
        self._run_id = run_id
        self._folder_of = folder_of

    def expand(self, examples: beam.PCollection) -> beam.pvalue.PDone:
        """Adds a write per output."""
        folder_of = self._folder_of
        sharding = tfrecord_sharding(examples.pipeline.options)
        for output in self._outputs:
            _ = (
                examples
                | f"Folder{output.name}" >> beam.Map(lambda e: (folder_of(e), e))
                | f"Write{output.name}"
                >> WriteShards(
                    output.root,
                    output.folders,
                    staging_dir(output.root, self._run_id),
                    sharding,
                    output.format,
                )
            )
        return beam.pvalue.PDone(examples.pipeline)
