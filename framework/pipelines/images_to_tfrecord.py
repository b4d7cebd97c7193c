r"""Images + SQL labels -> resized, sharded TFRecords (the original ``images_to_tfrecord``).

Example::

    datathon-etl images-to-tfrecord \
        --input_prefix 'data/nih/images/' \
        --path_match_regex '.*\.png' \
        --query "SELECT \"Image Index\" AS path, \"Finding Labels\" AS findings
                 FROM read_csv('data/nih/Data_Entry_2017.csv')" \
        --output_image_shape 256 256 \
        --output_tfrecord_dir out/tfrecords --output_dir out

Images are listed under one or more prefixes or globs (local or gs://), kept
if their path relative to the prefix matches ``--path_match_regex``, and
joined on that relative path with the rows of ``--query`` (DuckDB by default,
BigQuery with ``--query_backend bigquery``). A label ``path`` may also be the
image's full URI. Only paths travel through the join; each image's bytes are
read after it, resized once and written as ``<jpg|png>_bytes``, ``path`` and
every label column, typed from the query result's schema. ``features.json``
beside the shards describes the features. With ``--output_webdataset_dir``
and ``--output_parquet_dir``, the same records are also written as WebDataset
and Parquet shards (`datathon_etl.framework.shard_formats`), and with
``--output_table`` as a labels table (DuckDB or BigQuery): ``path`` and the
label columns in their storage types, the labels row; with ``--output_jpg_dir``
each image is also written as a file (named by `tree_path`; label paths that
would share a file are refused before the run); ``<output_dir>/_manifest.json``
(written last) counts images and label rows: every one is written or
quarantined, with its reason, in ``<output_dir>/_quarantine/``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
import attrs
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.io import fileio
from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from datathon_etl.framework.card import CardOptions, card_after_run
from datathon_etl.framework.card.subject import LABELS_COLUMNS, labels_columns
from datathon_etl.framework.cli import exit_process
from datathon_etl.framework.command import (
    PipelineCommand,
    RunOutputs,
    ShardedOutput,
    TFRecordOutput,
)
from datathon_etl.framework.errors import UsageError
from datathon_etl.framework.images import ImageFormat, ImageSpec
from datathon_etl.framework.images.formats import tree_path
from datathon_etl.framework.images.options import (
    ImageOptions,
    ImageTreeOptions,
    image_spec_from_options,
)
from datathon_etl.framework.ingest.assemble import LabelImages, inputs
from datathon_etl.framework.ingest.compact import JoinCodec
from datathon_etl.framework.ingest.join import ImageItem, JoinSpec, Refused, Table, TableRow
from datathon_etl.framework.ingest.pixel_sizes import read_pixel_sizes
from datathon_etl.framework.ingest.transforms import (
    IMAGES,
    LABEL_ROWS,
    TransformImages,
    WriteImageFileFn,
)
from datathon_etl.framework.manifest import PARQUET_SHARDS, PIXEL_SIZES, WEBDATASET_SHARDS, Outcome
from datathon_etl.framework.output_folders import check_apart
from datathon_etl.framework.preflight import check_cloud_resources
from datathon_etl.framework.provenance import RunClock
from datathon_etl.framework.quarantine import Quarantined, Reason, Stage
from datathon_etl.framework.run_layout import OutputOptions, RunLayout, resolve_output_dir
from datathon_etl.framework.run_records import TallyEach, TallyQuarantine, WriteRunRecords
from datathon_etl.framework.schema import SchemaError, UnsupportedTypeError
from datathon_etl.framework.schema.example import Example
from datathon_etl.framework.schema.types import scalar_of_arrow
from datathon_etl.framework.shard_formats import WriteShardedOutputs, sharded_outputs
from datathon_etl.framework.sources.folders import TallyInputFolders, read_input_folders
from datathon_etl.framework.sources.options import (
    InputFilesOptions,
    MatchOptions,
    input_glob,
    input_patterns,
    input_root,
    path_match_regex,
    relative_path,
)
from datathon_etl.framework.sources.regular_files import irregular_kind
from datathon_etl.framework.tables import (
    PATH_COLUMN,
    BigQueryTable,
    BigQueryWriteMethod,
    DuckDBTable,
    LabelsSourceOptions,
    QueryBackend,
    TableSpec,
    WriteTable,
    labels_query_from_options,
    parse_table_spec,
)
from datathon_etl.framework.tables.bigquery_schema import arrow_to_bigquery_schema
from datathon_etl.framework.tables.options import TableOutputOptions, query_backend
from datathon_etl.framework.tfrecords import FeatureSpec, write_features
from datathon_etl.framework.tfrecords.options import (
    ShardOutputOptions,
    TFRecordOptions,
    tfrecord_sharding,
)
from datathon_etl.framework.tfrecords.shards import WriteShards, staging_dir

__all__ = [
    "ImageFormatOptions",
    "ImagesToTFRecord",
    "build_pipeline",
    "feature_specs",
    "labels_schema",
    "main",
    "nulls_found",
]

PIPELINE = "images-to-tfrecord"
_FORMAT_NAMES = {"jpg": ImageFormat.JPEG, "jpeg": ImageFormat.JPEG, "png": ImageFormat.PNG}


class ImageFormatOptions(PipelineOptions):
    """The original ``images_to_tfrecord``'s ``--image_format``."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("input format")
        group.add_argument(
            "--image_format",
            choices=sorted(_FORMAT_NAMES),
            default=None,
            help=(
                "The input images' format, as in the original: only images whose "
                "bytes are in it are read (others are quarantined as "
                "wrong_image_format), and the output is written in it, as the "
                "feature jpg_bytes or png_bytes. Default: JPEG and PNG inputs, "
                "written as --output_image_format."
            ),
        )


@attrs.frozen
class _Job:
    patterns: tuple[str, ...]
    labels: pa.Table
    layout: RunLayout
    tfrecord_dir: str
    image: ImageSpec
    specs: tuple[FeatureSpec, ...]
    path_match_regex: str | None
    sharded: tuple[ShardedOutput, ...] = ()
    table: TableSpec | None = None
    bigquery_method: BigQueryWriteMethod = BigQueryWriteMethod.FILE_LOADS
    card: bool = True
    card_images: bool = True
    jpg_dir: str | None = None


def _labels_row(example: Example[str, dict[str, Any]]) -> dict[str, Any]:
    """The WebDataset and Parquet shards' row: ``path``, then the query's label columns."""
    return {PATH_COLUMN: example.path, **example.labels}


def nulls_found(labels: pa.Table) -> pa.Schema:
    """The query result's schema, a column nullable only if it holds a null.

    A query result says every column may be null; one that holds none is
    written as a scalar (a shape ``[]`` feature, a NOT NULL column).
    """
    return pa.schema(
        [field.with_nullable(labels.column(field.name).null_count > 0) for field in labels.schema]
    )


def labels_schema(labels: pa.Schema) -> pa.Schema:
    """``path``, then each label column in its storage type (narrower types widened).

    Raises:
        UsageError: A label column's type has no storage type.
    """
    fields = [pa.field(PATH_COLUMN, pa.string(), nullable=False)]
    for field in labels:
        if field.name == PATH_COLUMN:
            continue
        try:
            scalar = scalar_of_arrow(field.type)
        except UnsupportedTypeError as e:
            raise UsageError(f"--query: column {field.name!r}: {e}") from e
        fields.append(pa.field(field.name, getattr(pa, scalar.arrow)(), nullable=field.nullable))
    return pa.schema(fields)


class _EncodeFn(beam.DoFn):
    """Example -> serialized `tf.train.Example` with the query's typed columns."""

    def __init__(self, specs: tuple[FeatureSpec, ...], image_feature: str) -> None:
        super().__init__()
        self._specs = specs
        self._image_feature = image_feature

    def process(self, example: Example[str, dict[str, Any]]) -> Iterator[tuple[str, bytes]]:
        """Encodes one example, for the output folder itself ("")."""
        row = {self._image_feature: example.image, PATH_COLUMN: example.path, **example.labels}
        yield "", write_features(row, self._specs)


def _key_files(
    metadata: fileio.FileMetadata, roots: Sequence[str], regex: str | None
) -> Iterator[Any]:
    path = relative_path(metadata.path, roots)
    if regex is not None and not re.fullmatch(regex, path):
        yield beam.pvalue.TaggedOutput("skipped", path)
        return
    # A FIFO or a device is never opened: refused with its label row after the join.
    kind = irregular_kind(metadata.path)
    ref = metadata.path if kind is None else Refused(Reason.NOT_A_REGULAR_FILE, kind)
    yield path, ImageItem(metadata.path, path, ref)


def _key_rows(
    labels: pa.Table, roots: Sequence[str], regex: str | None
) -> tuple[list[tuple[str, TableRow]], list[str]]:
    """Returns the label rows keyed by relative path, and the paths --path_match_regex skips.

    The rows of images that --path_match_regex leaves out are skipped with
    them, not quarantined as labels without an image.
    """
    keyed, skipped = [], []
    for number, row in enumerate(labels.to_pylist(), start=1):
        path = relative_path(str(row.pop(PATH_COLUMN)), roots)
        if regex is not None and not re.fullmatch(regex, path):
            skipped.append(path)
        else:
            keyed.append((path, TableRow(f"query row {number}", (path, row))))
    return keyed, skipped


def _null_paths(labels: pa.Table) -> list[Quarantined]:
    return [
        Quarantined("", Stage.PARSE_LABELS, Reason.BAD_LABEL_ROW, "path is null", f"query row {n}")
        for n, path in enumerate(labels.column(PATH_COLUMN).to_pylist(), start=1)
        if path is None
    ]


def _row_labels(_path: str, row: tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    return row


_JOIN = JoinSpec((Table("label", LABEL_ROWS, Reason.IMAGE_WITHOUT_LABELS),), _row_labels)
"""Each image joined on its relative path with one query row: its labels."""


def build_pipeline(p: beam.Pipeline, job: _Job, roots: Sequence[str]) -> None:
    """Adds the steps of ``job`` to ``p``."""
    listed = (
        p
        | "Patterns" >> beam.Create([input_glob(pattern) for pattern in job.patterns])
        | "MatchFiles" >> fileio.MatchAll()
    )
    files = listed | "KeyFiles" >> beam.FlatMap(
        _key_files, roots, job.path_match_regex
    ).with_outputs("skipped", main="images")
    folders = listed | "Folders" >> TallyInputFolders(job.patterns)
    valid = job.labels.filter(pc.is_valid(job.labels[PATH_COLUMN]))
    keyed, skipped = _key_rows(valid, roots, job.path_match_regex)
    rows = p | "LabelRows" >> beam.Create(keyed)
    skipped_rows = p | "SkippedLabelRows" >> beam.Create(skipped)
    bad_rows = p | "NullPaths" >> beam.Create(_null_paths(job.labels))
    transform = TransformImages(PIPELINE, job.image, job.layout.run_id)
    labelled = inputs([files.images], [rows]) | "LabelImages" >> LabelImages(
        _JOIN, JoinCodec(), transform
    )
    image_feature = f"{'jpg' if job.image.format is ImageFormat.JPEG else 'png'}_bytes"
    _ = (
        labelled.examples
        | "Encode" >> beam.ParDo(_EncodeFn(job.specs, image_feature))
        | "WriteTFRecords"
        >> WriteShards(
            job.tfrecord_dir,
            [""],
            staging_dir(job.tfrecord_dir, job.layout.run_id),
            tfrecord_sharding(p.options),
        )
    )
    if job.jpg_dir:
        _ = labelled.examples | "WriteImageTree" >> beam.ParDo(
            WriteImageFileFn(job.jpg_dir, job.layout.temp_dir, job.image.format)
        )
    if job.sharded:
        _ = labelled.examples | "WriteShardedOutputs" >> WriteShardedOutputs(
            job.sharded, job.layout.run_id, _no_folder
        )
    if job.table is not None:
        schema = labels_schema(nulls_found(job.labels))
        _ = (
            labelled.examples
            | "LabelsRows" >> beam.Map(_labels_row)
            | "WriteLabelsTable"
            >> WriteTable(
                job.table,
                arrow_to_bigquery_schema(schema)
                if isinstance(job.table, BigQueryTable)
                else schema,
                bigquery_method=job.bigquery_method,
            )
        )
    refusals = (
        bad_rows,
        labelled.refusals | "JoinRecords" >> beam.Values(),
    ) | "AllRefusals" >> beam.Flatten()
    tallies = (
        files.images | "TallyImages" >> TallyEach(IMAGES, Outcome.INPUT),
        files.skipped | "TallyImagesSkippedIn" >> TallyEach(IMAGES, Outcome.INPUT),
        files.skipped | "TallySkipped" >> TallyEach(IMAGES, Outcome.SKIPPED),
        rows | "TallyRows" >> TallyEach(LABEL_ROWS, Outcome.INPUT),
        skipped_rows | "TallySkippedRowsIn" >> TallyEach(LABEL_ROWS, Outcome.INPUT),
        skipped_rows | "TallySkippedRows" >> TallyEach(LABEL_ROWS, Outcome.SKIPPED),
        bad_rows | "TallyBadRowsIn" >> TallyEach(LABEL_ROWS, Outcome.INPUT),
        bad_rows | "TallyBadRows" >> TallyQuarantine(LABEL_ROWS),
        labelled.tallies,
        labelled.examples | "TallyImagesWritten" >> TallyEach(IMAGES, Outcome.WRITTEN),
    ) | "AllTallies" >> beam.Flatten()
    notes = (folders, labelled.notes)
    _ = (refusals, tallies, *notes) | "WriteRunRecords" >> WriteRunRecords(job.layout)


def _no_folder(example: Example[str, dict[str, Any]]) -> str:
    return ""  # every shard in the output folder itself, as the TFRecords


def feature_specs(labels: pa.Schema, image_feature: str) -> tuple[FeatureSpec, ...]:
    """The TFRecord features: the image, ``path``, then each label column by its type.

    Raises:
        UsageError: A label column's type has no TFRecord feature type.
    """
    specs = [FeatureSpec(image_feature, "bytes_list"), FeatureSpec(PATH_COLUMN, "bytes_list", True)]
    for field in labels:
        if field.name == PATH_COLUMN:
            continue
        try:
            scalar = scalar_of_arrow(field.type)
        except UnsupportedTypeError as e:
            raise UsageError(f"--query: column {field.name!r}: {e}") from e
        specs.append(FeatureSpec.of(field.name, scalar, nullable=field.nullable))
    return tuple(specs)


def _check_tree_names(
    labels: pa.Table, roots: Sequence[str], regex: str | None, image_format: ImageFormat
) -> None:
    """Refuses label paths that would share one file of the image tree (see `tree_path`).

    Raises:
        UsageError: Two paths, e.g. ``b.dcm`` and ``b.jpg``, would both be ``b.jpg``.
    """
    seen: dict[str, str] = {}
    for labelled in labels.column(PATH_COLUMN).drop_null().to_pylist():
        path = relative_path(str(labelled), roots)
        if regex is not None and not re.fullmatch(regex, path):
            continue
        name = tree_path(path, image_format)
        first = seen.setdefault(name, path)
        if first != path:
            raise UsageError(
                f"--output_jpg_dir: the images {first!r} and {path!r} would both be written "
                f"as {name!r}; rename one, or leave --output_jpg_dir out"
            )


def _preflight(
    options: PipelineOptions,
    patterns: Sequence[str],
    outputs: dict[str, str | None],
    table: TableSpec | None,
) -> None:
    """Checks the buckets, the BigQuery labels table's dataset and credentials."""
    tables = options.view_as(LabelsSourceOptions)
    labels_table: TableSpec | None = None
    if tables.labels_table:
        try:
            labels_table = parse_table_spec(tables.labels_table, default_database=tables.labels_db)
        except ValueError as e:
            raise UsageError(f"--labels_table: {e}") from e
    check_cloud_resources(
        options,
        locations={"--input_prefix": list(patterns), **outputs},
        tables={"--labels_table": labels_table, "--output_table": table},
        file_loads=["--output_table"]
        if table is not None
        and BigQueryWriteMethod(options.view_as(TableOutputOptions).bigquery_write_method)
        is BigQueryWriteMethod.FILE_LOADS
        else [],
        bigquery_query=bool(tables.labels_query)
        and query_backend(options) is QueryBackend.BIGQUERY,
    )


def _job(prog: str, options: PipelineOptions) -> _Job:
    patterns = input_patterns(options)
    output_tfrecord_dir: str | None = options.view_as(TFRecordOptions).output_tfrecord_dir
    if not patterns:
        raise UsageError("--input_prefix (or --gcs_input_prefix) is required")
    if not output_tfrecord_dir:
        raise UsageError("--output_tfrecord_dir is required")
    tfrecord_dir = output_tfrecord_dir.rstrip("/")
    output_dir, _ = resolve_output_dir(prog, options, tfrecord_dir)
    shard_options = options.view_as(ShardOutputOptions)
    webdataset_dir = (shard_options.output_webdataset_dir or "").rstrip("/") or None
    parquet_dir = (shard_options.output_parquet_dir or "").rstrip("/") or None
    jpg_dir = (options.view_as(ImageTreeOptions).output_jpg_dir or "").rstrip("/") or None
    outputs = _output_folders(output_dir, tfrecord_dir, webdataset_dir, parquet_dir, jpg_dir)
    table_options = options.view_as(TableOutputOptions)
    table: TableSpec | None = None
    if table_options.output_table:
        try:
            table = parse_table_spec(
                table_options.output_table, default_database=f"{output_dir}/tables.duckdb"
            )
        except ValueError as e:
            raise UsageError(f"--output_table: {e}") from e
    _preflight(options, patterns, outputs, table)
    check_apart(
        outputs,
        {"--input_prefix": patterns},
        files={"--output_table": table.database if isinstance(table, DuckDBTable) else None},
    )
    for pattern in patterns:
        try:
            (found,) = FileSystems.match([pattern], limits=[1])
        except BeamIOError as e:
            raise UsageError(f"--input_prefix: cannot list {pattern!r}: {e}") from e
        if not found.metadata_list:
            raise UsageError(f"--input_prefix: {pattern!r} holds no file")
    regex = path_match_regex(options)
    try:
        query = labels_query_from_options(options)
    except ValueError as e:
        raise UsageError(str(e)) from e
    if query is None:
        raise UsageError("--query (or --labels_table) is required")
    try:
        labels = query.run()
    except (ValueError, SchemaError) as e:
        raise UsageError(f"--query: {e}") from e
    except Exception as e:  # the backend's own error (syntax, missing file, ...)
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise UsageError(f"--query failed: {type(e).__name__}: {first_line}") from e
    source_format = options.view_as(ImageFormatOptions).image_format
    try:
        image = image_spec_from_options(
            options, _FORMAT_NAMES[source_format] if source_format else None
        )
    except ValueError as e:
        raise UsageError(str(e)) from e
    if jpg_dir:
        roots = [input_root(pattern) for pattern in patterns]
        _check_tree_names(labels, roots, regex, image.format)
    image_feature = f"{'jpg' if image.format is ImageFormat.JPEG else 'png'}_bytes"
    schema = nulls_found(labels)
    specs = feature_specs(schema, image_feature)
    sharded = sharded_outputs(
        webdataset_dir,
        parquet_dir,
        [""],
        image_format=image.format,
        labels_schema=labels_schema(schema),
        labels_row=_labels_row,
        image_column=image_feature,
    )
    return _Job(
        patterns=tuple(patterns),
        labels=labels,
        layout=RunLayout(output_dir),
        tfrecord_dir=tfrecord_dir,
        image=image,
        specs=specs,
        path_match_regex=regex,
        sharded=sharded,
        table=table,
        bigquery_method=BigQueryWriteMethod(table_options.bigquery_write_method),
        card=not options.view_as(CardOptions).no_card,
        card_images=not options.view_as(CardOptions).card_without_images,
        jpg_dir=jpg_dir,
    )


def _output_folders(
    output_dir: str,
    tfrecord_dir: str,
    webdataset_dir: str | None,
    parquet_dir: str | None,
    jpg_dir: str | None,
) -> dict[str, str | None]:
    return {
        "--output_dir": output_dir,
        "--output_tfrecord_dir": tfrecord_dir,
        "--output_webdataset_dir": webdataset_dir,
        "--output_parquet_dir": parquet_dir,
        "--output_jpg_dir": jpg_dir,
    }


class ImagesToTFRecord(PipelineCommand[_Job]):
    """``datathon-etl images-to-tfrecord``."""

    name = PIPELINE
    description = __doc__.split("\n\n", 1)[0] if __doc__ else ""
    option_classes = (
        InputFilesOptions,
        MatchOptions,
        TFRecordOptions,
        ShardOutputOptions,
        ImageTreeOptions,
        OutputOptions,
        TableOutputOptions,
        LabelsSourceOptions,
        ImageFormatOptions,
        ImageOptions,
        CardOptions,
    )
    required = ("output_tfrecord_dir",)
    output_dir_default = "the --output_tfrecord_dir folder"

    def main(self, argv: Sequence[str] | None = None) -> int:
        """Starts the run's clock (for the manifest and the card), then runs."""
        self._clock = RunClock([*self.prog.split(), *(sys.argv[1:] if argv is None else argv)])
        return super().main(argv)

    def plan(self, options: PipelineOptions) -> _Job:
        """Checks the flags, the cloud resources and the inputs; runs the label query."""
        return _job(self.prog, options)

    def outputs(self, job: _Job) -> RunOutputs:
        """The ``--output_dir``, the TFRecords', WebDataset, Parquet and image tree folders."""
        return RunOutputs(
            job.layout,
            _output_folders(
                job.layout.output_dir, job.tfrecord_dir, *_sharded_roots(job), job.jpg_dir
            ),
            TFRecordOutput(job.tfrecord_dir, ("",), job.specs),
            job.sharded,
        )

    def started(self, job: _Job) -> str:
        """How many label rows, which images."""
        return f"{job.labels.num_rows} label rows; listing {', '.join(job.patterns)}"

    def build(self, p: beam.Pipeline, job: _Job) -> None:
        """The listing, join, transform and TFRecord steps."""
        build_pipeline(p, job, [input_root(pattern) for pattern in job.patterns])

    def parameters(self, options: PipelineOptions, job: _Job, counted: bool) -> dict[str, Any]:
        """The inputs, the label query and its columns, the image transform, the outputs."""
        labels = options.view_as(LabelsSourceOptions)
        schema = labels_schema(nulls_found(job.labels))
        parameters: dict[str, Any] = {
            "input_prefix": list(job.patterns),
            "labels_query": labels.labels_query,
            "labels_table": labels.labels_table,
            LABELS_COLUMNS: labels_columns(
                [(f.name, scalar_of_arrow(f.type).name, f.nullable) for f in schema]
            ),
            "output_table": options.view_as(TableOutputOptions).output_table,
            "path_match_regex": job.path_match_regex,
            "output_tfrecord_dir": job.tfrecord_dir,
            **{f"output_{output.name.lower()}_dir": output.root for output in job.sharded},
            "output_jpg_dir": job.jpg_dir,
            "image": attrs.asdict(job.image),
            "features": [s.name for s in job.specs],
        }
        if counted:
            parameters[PIXEL_SIZES] = read_pixel_sizes(job.layout.notes_prefix)
            parameters["inputs"] = read_input_folders(job.layout.notes_prefix)
        parameters["run"] = self._clock.record()
        return parameters

    def finished(self, job: _Job) -> str | None:
        """The data card, unless ``--no_card``."""
        return card_after_run(
            job.layout.output_dir, self.prog, wanted=job.card, images=job.card_images
        )


def _sharded_roots(job: _Job) -> tuple[str | None, str | None]:
    """The ``--output_webdataset_dir`` and ``--output_parquet_dir`` (None: not written)."""
    roots = {output.parameter: output.root for output in job.sharded}
    return roots.get(WEBDATASET_SHARDS), roots.get(PARQUET_SHARDS)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the pipeline; returns the exit code (0, 1 for refusals past the limit, 2 usage)."""
    return ImagesToTFRecord().main(argv)


if __name__ == "__main__":
    exit_process(main())
