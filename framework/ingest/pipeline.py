"""The generic ingestion: tars of images + label CSVs -> JPG tree, shards, labels table.

One pass, each output optional. Labels are parsed and joined with the tar
members (or image files, ``--input_prefix``) on the image path (only
references travel); bytes are read by range after the join, resized once, and
fanned out to every output: the JPG tree, the TFRecords, the WebDataset and
Parquet shards (in the TFRecords' folders, sized like them) and the labels
table. Every tar member, image file and CSV row ends
written or in ``<output_dir>/_quarantine/``, and
``<output_dir>/_manifest.json`` (written last) counts every stage.

Every data set's images are joined by the one mechanism (`assemble`):
on their path with each per-image table (the label CSV of a data set
labelled per image, its split lists; or the metadata and split tables), and,
for labels per group of images (`IngestSpec.group_labels`: a study, a
patient), on their group with the group label rows, told apart by name among
``--input_csv`` (``--labels_source`` picks the label file). A data set
declaring its patient and split gets a patient leakage report (`leakage`),
from the labels table once written.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import apache_beam as beam
import attrs
from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from datathon_etl.framework.archives import ARCHIVE_REASONS, ArchiveSummary, IndexTars
from datathon_etl.framework.archives.options import TarOptions
from datathon_etl.framework.card import CardOptions, card_after_run
from datathon_etl.framework.command import (
    PipelineCommand,
    RunOutputs,
    ShardedOutput,
    TableOutput,
    TFRecordOutput,
)
from datathon_etl.framework.errors import UsageError
from datathon_etl.framework.images import ImageSpec
from datathon_etl.framework.images.options import (
    ImageOptions,
    ImageTreeOptions,
    image_spec_from_options,
)
from datathon_etl.framework.ingest.assemble import (
    ABSENT_LABELS_NOTE,
    LabelImages,
    inputs,
)
from datathon_etl.framework.ingest.compact import JoinCodec
from datathon_etl.framework.ingest.dicom_columns import DicomColumns
from datathon_etl.framework.ingest.files import ListImageFiles
from datathon_etl.framework.ingest.label_source_options import LabelSourceOptions
from datathon_etl.framework.ingest.leakage import report_leakage
from datathon_etl.framework.ingest.options import IngestOptions
from datathon_etl.framework.ingest.pixel_sizes import read_pixel_sizes
from datathon_etl.framework.ingest.spec import IngestSpec
from datathon_etl.framework.ingest.split_list_options import SplitListOptions
from datathon_etl.framework.ingest.tables import csv_roles, join_spec, read_tables
from datathon_etl.framework.ingest.transforms import (
    IMAGES,
    KeyImageFn,
    TransformImages,
    WriteImageFileFn,
)
from datathon_etl.framework.manifest import PIXEL_SIZES, Outcome, Tally
from datathon_etl.framework.output_folders import check_apart
from datathon_etl.framework.preflight import check_cloud_resources
from datathon_etl.framework.provenance import RunClock, describe_files
from datathon_etl.framework.quarantine import QUARANTINE_TAG, Quarantined
from datathon_etl.framework.run_layout import OutputOptions, RunLayout, resolve_output_dir
from datathon_etl.framework.run_records import (
    TallyEach,
    TallyQuarantine,
    WriteRunRecords,
    read_run_lines,
)
from datathon_etl.framework.shard_formats import WriteShardedOutputs, sharded_outputs
from datathon_etl.framework.sources.csv_rows import missing_columns
from datathon_etl.framework.sources.folders import read_input_folders
from datathon_etl.framework.sources.options import (
    InputFilesOptions,
    MatchOptions,
    input_glob,
    input_patterns,
    match_inputs,
    path_match_regex,
)
from datathon_etl.framework.tables import (
    BigQueryTable,
    BigQueryWriteMethod,
    DuckDBTable,
    TableSpec,
    WriteTable,
    parse_table_spec,
)
from datathon_etl.framework.tables.options import TableOutputOptions
from datathon_etl.framework.tfrecords.options import (
    ShardOutputOptions,
    TFRecordOptions,
    tfrecord_sharding,
)
from datathon_etl.framework.tfrecords.shards import WriteShards, staging_dir

__all__ = ["ARCHIVES", "Ingest", "IngestJob", "build_pipeline", "run"]

ARCHIVES = "archives"
"""Manifest stage: the tar files (input = read to the end + quarantined as damaged)."""


@attrs.frozen
class IngestJob:
    """One run's validated inputs and outputs.

    Attributes:
        tars: Tar URIs.
        csvs: Label CSV URIs (per group: the chosen label source's).
        layout: Where the manifest, quarantine and scratch files go.
        image: The image transform.
        jpg_dir: Root of the resized JPG tree, if wanted.
        tfrecord_dir: Root of the TFRecord folders, if wanted.
        webdataset_dir: Root of the WebDataset folders, if wanted.
        parquet_dir: Root of the Parquet folders, if wanted.
        table: The labels table spec.
        bigquery_method: How rows reach a BigQuery table.
        path_match_regex: Only matching tar members are read.
        max_member_bytes: Larger tar members are quarantined.
        prefixes: Folders or globs of image files (``--input_prefix``).
        tables: Each of the layout's per-image tables' CSV URIs, by table name.
        card: Whether the run ends with its data card.
        card_images: Whether the card shows thumbnails.
        split_lists: The split's list files, each with its split's code.
    """

    tars: tuple[str, ...]
    csvs: tuple[str, ...]
    layout: RunLayout
    image: ImageSpec
    jpg_dir: str | None = None
    tfrecord_dir: str | None = None
    webdataset_dir: str | None = None
    parquet_dir: str | None = None
    table: str = "labels"
    bigquery_method: BigQueryWriteMethod = BigQueryWriteMethod.FILE_LOADS
    path_match_regex: str | None = None
    max_member_bytes: int = 2**31
    prefixes: tuple[str, ...] = ()
    tables: dict[str, tuple[str, ...]] = attrs.field(factory=dict)
    card: bool = True
    card_images: bool = True
    split_lists: dict[str, int] = attrs.field(factory=dict)


def _summary_tallies(summary: ArchiveSummary) -> list[Tally]:
    tallies = [Tally(IMAGES, Outcome.INPUT, count=summary.members)] if summary.members else []
    if summary.skipped:
        tallies.append(Tally(IMAGES, Outcome.SKIPPED, count=summary.skipped))
    if summary.complete:
        tallies.append(Tally(ARCHIVES, Outcome.WRITTEN))
    return tallies


def _tar_stage(record: Quarantined) -> str:
    return ARCHIVES if record.reason in ARCHIVE_REASONS else IMAGES


def _images(
    p: beam.Pipeline, spec: IngestSpec, job: IngestJob
) -> tuple[list[beam.PCollection], list[beam.PCollection], list[beam.PCollection], list[Any]]:
    """Tar members and image files -> ``(path, ImageItem)``s, refusals, tallies, notes."""
    keyed, refusals, tallies, notes = [], [], [], []
    if job.tars:
        # Tar members -> (path, ImageItem): refs, or small resized bytes.
        # IndexTars spreads the tars over the workers itself.
        tars = p | "Tars" >> beam.Create(list(job.tars), reshuffle=False)
        index = tars | "IndexTars" >> IndexTars(
            path_match_regex=job.path_match_regex, max_member_bytes=job.max_member_bytes
        )
        # Refs and loaded members are keyed apart: a Flatten before the step
        # that transforms loaded members would make the local runner pass
        # their bytes between stages (encoded, copied) instead of fusing it.
        key_images = KeyImageFn(spec, job.image)
        for name, members in (("Refs", index.refs), ("Loaded", index.loaded)):
            by_name = members | f"Key{name}" >> beam.ParDo(key_images).with_outputs(
                QUARANTINE_TAG, main="images"
            )
            keyed.append(by_name.images)
            refusals.append(by_name[QUARANTINE_TAG])
        refusals.append(index.quarantine)
        tallies += [
            tars | "TallyTars" >> TallyEach(ARCHIVES, Outcome.INPUT),
            index.summaries | "TallySummaries" >> beam.FlatMap(_summary_tallies),
        ]
    if job.prefixes:
        # Image files -> (path, ImageItem) with the file's URI as the ref.
        files = p | "ListImageFiles" >> ListImageFiles(
            spec, job.prefixes, job.path_match_regex, job.max_member_bytes
        )
        keyed.append(files.images)
        refusals.append(files.quarantine)
        notes.append(files.folders)
        tallies += [
            files.images | "TallyFiles" >> TallyEach(IMAGES, Outcome.INPUT),
            files.quarantine | "TallyRefusedFiles" >> TallyEach(IMAGES, Outcome.INPUT),
            files.skipped | "TallySkippedFilesIn" >> TallyEach(IMAGES, Outcome.INPUT),
            files.skipped | "TallySkippedFiles" >> TallyEach(IMAGES, Outcome.SKIPPED),
        ]
    return keyed, refusals, tallies, notes


def build_pipeline(p: beam.Pipeline, spec: IngestSpec, job: IngestJob) -> None:
    """Adds the ingestion of ``job`` to ``p``."""
    # Notes: input folders, pixel sizes; per group: images without labels.
    images, image_inputs_refused, tallies, notes = _images(p, spec, job)
    join = join_spec(spec)
    read = read_tables(p, spec, job.csvs, job.tables, job.split_lists, job.path_match_regex)
    tallies += read.tallies
    columns = DicomColumns.of(spec.key_type, spec.labels_type)
    transform = TransformImages(f"{spec.dataset} ingest", job.image, job.layout.run_id, columns)
    codec = JoinCodec(join.path_key_type, join.key_type, read.wheres)
    labelled = inputs(images, read.table_rows, read.group_rows) | "LabelImages" >> LabelImages(
        join, codec, transform
    )
    examples = labelled.examples
    tallies.append(labelled.tallies)
    notes.append(labelled.notes)

    if job.jpg_dir:
        _ = examples | "WriteJpgTree" >> beam.ParDo(
            WriteImageFileFn(job.jpg_dir, job.layout.temp_dir, job.image.format)
        )
    if job.tfrecord_dir:
        _write_tfrecords(examples, spec, job)
    if sharded := _sharded_outputs(spec, job):
        partition = spec.partition
        _ = examples | "WriteShardedOutputs" >> WriteShardedOutputs(
            sharded, job.layout.run_id, lambda e: partition(e.key)
        )
    _write_table(examples, spec, job)

    image_refusals = image_inputs_refused | "ImageRefusals" >> beam.Flatten()
    row_refusals = read.refusals | "RowRefusals" >> beam.Flatten()
    refusals = (
        image_refusals,
        row_refusals | "RowRecords" >> beam.Values(),
        labelled.refusals | "JoinRecords" >> beam.Values(),
    ) | "AllRefusals" >> beam.Flatten()
    tallies += [
        image_refusals | "TallyImageRefusals" >> TallyQuarantine(_tar_stage),
        row_refusals
        | "TallyRowRefusals"
        >> beam.MapTuple(lambda stage, q: Tally(stage, Outcome.QUARANTINED, str(q.reason))),
        examples | "TallyImagesWritten" >> TallyEach(IMAGES, Outcome.WRITTEN),
    ]
    all_tallies = tallies | "AllTallies" >> beam.Flatten()
    _ = (refusals, all_tallies, *notes) | "WriteRunRecords" >> WriteRunRecords(job.layout)


def _write_tfrecords(examples: beam.PCollection, spec: IngestSpec, job: IngestJob) -> None:
    encode, partition, root = spec.encode, spec.partition, str(job.tfrecord_dir)
    _ = (
        examples
        | "Encode" >> beam.Map(lambda e: (partition(e.key), encode(e)))
        | "WriteTFRecords"
        >> WriteShards(
            root,
            spec.partitions,
            staging_dir(root, job.layout.run_id),
            tfrecord_sharding(examples.pipeline.options),
        )
    )


def _sharded_outputs(spec: IngestSpec, job: IngestJob) -> tuple[ShardedOutput, ...]:
    return sharded_outputs(
        job.webdataset_dir,
        job.parquet_dir,
        spec.partitions,
        image_format=job.image.format,
        labels_schema=spec.labels_schema,
        labels_row=spec.labels_row,
        image_column=spec.image_feature,
    )


def _labels_table(job: IngestJob) -> TableSpec:
    return parse_table_spec(job.table, default_database=f"{job.layout.output_dir}/tables.duckdb")


def _write_table(examples: beam.PCollection, spec: IngestSpec, job: IngestJob) -> None:
    table = _labels_table(job)
    schema = spec.labels_bigquery_schema if isinstance(table, BigQueryTable) else spec.labels_schema
    labels_row = spec.labels_row
    _ = (
        examples
        | "LabelsRows" >> beam.Map(labels_row)
        | "WriteLabelsTable" >> WriteTable(table, schema, bigquery_method=job.bigquery_method)
    )


def _check_prefixes(prefixes: Sequence[str]) -> None:
    for pattern in prefixes:
        try:
            (found,) = FileSystems.match([input_glob(pattern)], limits=[1])
        except BeamIOError as e:
            raise UsageError(f"--input_prefix: cannot list {pattern!r}: {e}") from e
        if not found.metadata_list:
            raise UsageError(f"--input_prefix: {pattern!r} holds no file")


def _check_columns(uris: Sequence[str], columns: Sequence[str]) -> None:
    for uri in uris:
        try:
            missing = missing_columns(uri, columns)
        except (OSError, BeamIOError, UnicodeDecodeError) as e:
            raise UsageError(f"--input_csv: cannot read {uri}: {e}") from e
        if missing:
            raise UsageError(f"--input_csv: {uri} lacks the column(s) {', '.join(missing)}")


def _csv_roles(
    spec: IngestSpec, csv_files: list[str], labels_source: str | None
) -> tuple[list[str], dict[str, tuple[str, ...]]]:
    """Returns (label CSVs, per-image tables' CSVs), checked."""
    if spec.group_labels is None and labels_source is not None:
        raise UsageError(f"--labels_source: {spec.dataset} has one kind of label file")
    if spec.image_tables is None:
        _check_columns(csv_files, spec.csv_columns)
        return csv_files, {}
    try:
        tables, labels = csv_roles(spec, csv_files, labels_source)
    except ValueError as e:
        raise UsageError(str(e)) from e
    for table in spec.image_tables.tables:
        _check_columns(tables[table.name], table.columns)
    _check_columns(labels, spec.csv_columns)
    return list(labels), tables


def _split_lists(spec: IngestSpec, options: PipelineOptions) -> dict[str, int]:
    """The ``--split_lists`` files, each with its split's code, checked against the declaration."""
    if spec.split_lists is None:
        return {}
    found = match_inputs(options.view_as(SplitListOptions).split_lists or [], "--split_lists")
    try:
        return spec.split_lists.roles(sorted({uri for uris in found.values() for uri in uris}))
    except ValueError as e:
        raise UsageError(f"--split_lists: {e}") from e


def _job_from_options(spec: IngestSpec, prog: str, options: PipelineOptions) -> IngestJob:
    ingest = options.view_as(IngestOptions)
    jpg_dir: str | None = options.view_as(ImageTreeOptions).output_jpg_dir
    list_patterns = (
        options.view_as(SplitListOptions).split_lists if spec.split_lists is not None else None
    )
    tar_options = options.view_as(TarOptions)
    prefixes = input_patterns(options)
    tfrecord_dir: str | None = options.view_as(TFRecordOptions).output_tfrecord_dir
    webdataset_dir: str | None = options.view_as(ShardOutputOptions).output_webdataset_dir
    parquet_dir: str | None = options.view_as(ShardOutputOptions).output_parquet_dir
    # The original had no --output_dir: by default the run's records go with its outputs.
    output_dir, _ = resolve_output_dir(
        prog, options, tfrecord_dir or jpg_dir or webdataset_dir or parquet_dir
    )
    # The labels table is cheap and always useful: by default a DuckDB table.
    table: str = options.view_as(TableOutputOptions).output_table or f"{spec.dataset}_labels"
    try:
        table_spec = parse_table_spec(table, default_database=f"{output_dir}/tables.duckdb")
    except ValueError as e:
        raise UsageError(f"--output_table: {e}") from e
    method = BigQueryWriteMethod(options.view_as(TableOutputOptions).bigquery_write_method)
    check_cloud_resources(
        options,
        locations={
            "--input_tars": tar_options.input_tars,
            "--input_prefix": prefixes,
            "--input_csv": ingest.input_csv,
            "--split_lists": list_patterns,
            "--output_dir": output_dir,
            "--output_jpg_dir": jpg_dir,
            "--output_tfrecord_dir": tfrecord_dir,
            "--output_webdataset_dir": webdataset_dir,
            "--output_parquet_dir": parquet_dir,
        },
        tables={"--output_table": table_spec},
        file_loads=["--output_table"] if method is BigQueryWriteMethod.FILE_LOADS else [],
    )
    # Images come from tars, from folders of image files, or both.
    tars = {}
    if tar_options.input_tars or not prefixes:
        tars = match_inputs(tar_options.input_tars or [], "--input_tars")
    _check_prefixes(prefixes)
    csvs = match_inputs(ingest.input_csv or [], "--input_csv")
    csv_files, tables = _csv_roles(
        spec,
        sorted({path for paths in csvs.values() for path in paths}),
        options.view_as(LabelSourceOptions).labels_source,
    )
    split_lists = _split_lists(spec, options)
    regex = path_match_regex(options)
    if tar_options.max_member_bytes <= 0:
        raise UsageError("--max_member_bytes must be positive")
    try:
        image = image_spec_from_options(options)
    except ValueError as e:
        raise UsageError(str(e)) from e
    job = IngestJob(
        tars=tuple(sorted({path for paths in tars.values() for path in paths})),
        csvs=tuple(csv_files),
        layout=RunLayout(output_dir),
        image=image,
        jpg_dir=(jpg_dir or "").rstrip("/") or None,
        tfrecord_dir=(tfrecord_dir or "").rstrip("/") or None,
        webdataset_dir=(webdataset_dir or "").rstrip("/") or None,
        parquet_dir=(parquet_dir or "").rstrip("/") or None,
        table=table,
        bigquery_method=method,
        path_match_regex=regex,
        max_member_bytes=tar_options.max_member_bytes,
        prefixes=tuple(prefixes),
        tables=tables,
        card=not options.view_as(CardOptions).no_card,
        card_images=not options.view_as(CardOptions).card_without_images,
        split_lists=split_lists,
    )
    _sharded_outputs(spec, job)  # a format the labels cannot take: refused before the run
    check_apart(
        _output_folders(job),
        {
            "--input_tars": tar_options.input_tars,
            "--input_prefix": [input_glob(prefix) for prefix in prefixes],
            "--input_csv": ingest.input_csv,
            "--split_lists": list_patterns,
        },
        files={
            "--output_table": table_spec.database if isinstance(table_spec, DuckDBTable) else None
        },
    )
    return job


def _output_folders(job: IngestJob) -> dict[str, str | None]:
    return {
        "--output_dir": job.layout.output_dir,
        "--output_jpg_dir": job.jpg_dir,
        "--output_tfrecord_dir": job.tfrecord_dir,
        "--output_webdataset_dir": job.webdataset_dir,
        "--output_parquet_dir": job.parquet_dir,
    }


class Ingest(PipelineCommand[IngestJob]):
    """``datathon-etl <dataset> ingest`` for the data set of ``spec``."""

    required = ("input_csv",)
    output_dir_default = (
        "the --output_tfrecord_dir folder, else the --output_jpg_dir, --output_webdataset_dir "
        "or --output_parquet_dir one"
    )

    def __init__(self, spec: IngestSpec) -> None:
        self.spec = spec
        self.name = f"{spec.dataset} ingest"
        self.description = (
            f"Ingest {spec.dataset}: tars or folders of images and label CSVs -> resized JPG "
            "tree, TFRecords (and WebDataset and Parquet shards) per split and view, and a "
            "labels table (DuckDB or BigQuery)."
        )
        self.option_classes = (
            TarOptions,
            InputFilesOptions,
            IngestOptions,
            ImageTreeOptions,
            *([LabelSourceOptions] if spec.group_labels is not None else []),
            *([SplitListOptions] if spec.split_lists is not None else []),
            MatchOptions,
            TFRecordOptions,
            ShardOutputOptions,
            OutputOptions,
            TableOutputOptions,
            ImageOptions,
            CardOptions,
        )

    def main(self, argv: Sequence[str] | None = None) -> int:
        """Starts the run's clock (for the manifest and the card), then runs."""
        self._clock = RunClock([*self.prog.split(), *(sys.argv[1:] if argv is None else argv)])
        return super().main(argv)

    def plan(self, options: PipelineOptions) -> IngestJob:
        """Checks the flags, the cloud resources, the inputs and the CSVs' columns."""
        return _job_from_options(self.spec, self.prog, options)

    def outputs(self, job: IngestJob) -> RunOutputs:
        """The ``--output_dir``, the JPG tree, the TFRecord, WebDataset and Parquet folders."""
        spec = self.spec
        tfrecords = None
        if job.tfrecord_dir:
            tfrecords = TFRecordOutput(
                job.tfrecord_dir,
                spec.partitions,
                spec.feature_specs,
                {
                    "dataset": spec.dataset,
                    "folders": list(spec.partitions),
                    "reader": spec.features_module,
                },
            )
        return RunOutputs(
            job.layout,
            _output_folders(job),
            tfrecords,
            _sharded_outputs(spec, job),
            (TableOutput(_labels_table(job), spec.labels_schema),),
        )

    def started(self, job: IngestJob) -> str:
        """How many files of each kind."""
        folders = f", {len(job.prefixes)} image folder(s)" if job.prefixes else ""
        tables = "".join(f", {len(uris)} {name} file(s)" for name, uris in job.tables.items())
        lists = f", {len(job.split_lists)} split list(s)" if job.split_lists else ""
        return f"{len(job.tars)} tar file(s){folders}{tables}, {len(job.csvs)} label file(s){lists}"

    def build(self, p: beam.Pipeline, job: IngestJob) -> None:
        """The ingestion's steps."""
        build_pipeline(p, self.spec, job)

    def parameters(self, options: PipelineOptions, job: IngestJob, counted: bool) -> dict[str, Any]:
        """The inputs and outputs, the sources' pixel sizes; per group, the notes' figures."""
        parameters: dict[str, Any] = {
            "input_tars": list(options.view_as(TarOptions).input_tars or []),
            "input_prefix": list(job.prefixes),
            "input_csv": list(options.view_as(IngestOptions).input_csv),
            "output_jpg_dir": job.jpg_dir,
            "output_tfrecord_dir": job.tfrecord_dir,
            "output_webdataset_dir": job.webdataset_dir,
            "output_parquet_dir": job.parquet_dir,
            "output_table": job.table,
            "image": attrs.asdict(job.image),
            "declaration": self.spec.declaration,
            "inputs": describe_files(
                [
                    *job.tars,
                    *job.csvs,
                    *(uri for uris in job.tables.values() for uri in uris),
                    *job.split_lists,
                ]
            ),
        }
        if counted:
            parameters[PIXEL_SIZES] = read_pixel_sizes(job.layout.notes_prefix)
            parameters["inputs"] += read_input_folders(job.layout.notes_prefix)
        if job.split_lists:
            parameters["split_lists"] = sorted(job.split_lists)
        if counted:
            parameters.update(_run_figures(job, self.spec, self.prog))
        parameters["run"] = self._clock.record()
        return parameters

    def finished(self, job: IngestJob) -> str | None:
        """The data card, unless ``--no_card``."""
        return card_after_run(
            job.layout.output_dir, self.prog, wanted=job.card, images=job.card_images
        )


def run(spec: IngestSpec, argv: Sequence[str] | None = None) -> int:
    """Parses flags, runs the ingestion of ``spec``'s dataset, returns the exit code."""
    return Ingest(spec).main(argv)


def _run_figures(job: IngestJob, spec: IngestSpec, prog: str) -> dict[str, Any]:
    """The run's figures: images without group labels (from its notes), patient leakage."""
    notes = [json.loads(line) for line in read_run_lines(job.layout.notes_prefix)]
    parameters: dict[str, Any] = {}
    if job.tables:
        parameters["table_files"] = {name: list(uris) for name, uris in job.tables.items()}
    if spec.group_labels is not None:
        group = spec.group_labels.name
        absent = sum(note["count"] for note in notes if note["note"] == ABSENT_LABELS_NOTE)
        print(f"{prog}: {absent} image(s) written without {group} labels (labels null)", flush=True)
        parameters.update(
            {
                "labels_files": list(job.csvs),
                "labels_per": group,
                f"images_without_{group}_labels": absent,
            }
        )
    if spec.leakage is not None:
        table = _labels_table(job)
        parameters.update(report_leakage(spec.leakage, table, job.layout.output_dir, prog))
    return parameters
