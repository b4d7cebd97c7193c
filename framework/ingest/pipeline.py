"""The generic ingestion: tars of images + label CSVs -> JPG tree, TFRecords, labels table.

One pass, each output optional. Labels are parsed and joined with the tar
members on the image path (only references travel); bytes are read by range
after the join, resized once, and fanned out to every output. Every tar
member and every CSV row ends written or in ``<output_dir>/_quarantine/``,
and ``<output_dir>/_manifest.json`` (written last) counts both stages.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import apache_beam as beam
import attrs
from apache_beam.io.filesystem import BeamIOError
from apache_beam.options.pipeline_options import PipelineOptions

from datathon_etl.framework.archives import ARCHIVE_REASONS, ArchiveSummary, IndexTars
from datathon_etl.framework.archives.options import TarOptions
from datathon_etl.framework.flags import local_processes, parse_flags
from datathon_etl.framework.images import ImageSpec
from datathon_etl.framework.images.options import ImageOptions, image_spec_from_options
from datathon_etl.framework.ingest.options import IngestOptions
from datathon_etl.framework.ingest.spec import IngestSpec
from datathon_etl.framework.ingest.transforms import (
    IMAGES,
    LABEL_ROWS,
    JoinAndTransform,
    KeyImageFn,
    ParseLabelRowFn,
    WriteImageFileFn,
)
from datathon_etl.framework.manifest import (
    EXIT_USAGE,
    Outcome,
    OutputOptions,
    RunLayout,
    Tally,
    TallyEach,
    TallyQuarantine,
    UsageError,
    WriteTallies,
    check_output_options,
    finish_run,
    match_inputs,
)
from datathon_etl.framework.quarantine import QUARANTINE_TAG, Quarantined, WriteQuarantine
from datathon_etl.framework.sources.csv_rows import ReadCsvRows, missing_columns
from datathon_etl.framework.sources.options import MatchOptions, path_match_regex
from datathon_etl.framework.tables import (
    BigQueryTable,
    BigQueryWriteMethod,
    WriteTable,
    parse_table_spec,
)
from datathon_etl.framework.tables.options import TableOptions
from datathon_etl.framework.tfrecords.options import TFRecordOptions
from datathon_etl.framework.tfrecords.shards import (
    WriteShards,
    delete_stale_shards,
    write_features_file,
)

__all__ = ["ARCHIVES", "IngestJob", "build_pipeline", "run"]

ARCHIVES = "archives"
"""Manifest stage: the tar files (input = read to the end + quarantined as damaged)."""


@attrs.frozen
class IngestJob:
    """One run's validated inputs and outputs.

    Attributes:
        tars: Tar URIs.
        csvs: Label CSV URIs.
        layout: Where the manifest, quarantine and scratch files go.
        image: The image transform.
        jpg_dir: Root of the resized JPG tree, if wanted.
        tfrecord_dir: Root of the TFRecord folders, if wanted.
        table: The labels table spec.
        bigquery_method: How rows reach a BigQuery table.
        path_match_regex: Only matching tar members are read.
        max_member_bytes: Larger tar members are quarantined.
        expected_images: Label rows counted up front, for progress lines.
        processes: Local worker processes, for progress lines.
    """

    tars: tuple[str, ...]
    csvs: tuple[str, ...]
    layout: RunLayout
    image: ImageSpec
    jpg_dir: str | None = None
    tfrecord_dir: str | None = None
    table: str = "labels"
    bigquery_method: BigQueryWriteMethod = BigQueryWriteMethod.FILE_LOADS
    path_match_regex: str | None = None
    max_member_bytes: int = 2**31
    expected_images: int | None = None
    processes: int = 1


def _summary_tallies(summary: ArchiveSummary) -> list[Tally]:
    tallies = [Tally(IMAGES, Outcome.INPUT, count=summary.members)] if summary.members else []
    if summary.skipped:
        tallies.append(Tally(IMAGES, Outcome.SKIPPED, count=summary.skipped))
    if summary.complete:
        tallies.append(Tally(ARCHIVES, Outcome.WRITTEN))
    return tallies


def _tar_stage(record: Quarantined) -> str:
    return ARCHIVES if record.reason in ARCHIVE_REASONS else IMAGES


def build_pipeline(p: beam.Pipeline, spec: IngestSpec, job: IngestJob) -> None:
    """Adds the ingestion of ``job`` to ``p``."""
    # Label rows -> (path, LabelRecord).
    rows = p | "LabelFiles" >> beam.Create(list(job.csvs)) | "ReadRows" >> ReadCsvRows()
    parsed = rows | "ParseRows" >> beam.ParDo(ParseLabelRowFn(spec)).with_outputs(
        QUARANTINE_TAG, main="records"
    )

    # Tar members -> (path, ImageItem): refs, or small resized bytes.
    tars = p | "Tars" >> beam.Create(list(job.tars))
    index = tars | "IndexTars" >> IndexTars(
        path_match_regex=job.path_match_regex, max_member_bytes=job.max_member_bytes
    )
    members = (index.refs, index.loaded) | "AllMembers" >> beam.Flatten()
    keyed = members | "KeyImages" >> beam.ParDo(KeyImageFn(spec, job.image)).with_outputs(
        QUARANTINE_TAG, main="images"
    )

    labelled = (keyed.images, parsed.records) | "JoinAndTransform" >> JoinAndTransform(
        f"{spec.dataset} ingest", job.image, job.layout.run_id, job.expected_images, job.processes
    )
    examples = labelled.examples

    if job.jpg_dir:
        _ = examples | "WriteJpgTree" >> beam.ParDo(
            WriteImageFileFn(job.jpg_dir, job.layout.temp_dir)
        )
    if job.tfrecord_dir:
        _write_tfrecords(examples, spec, job.tfrecord_dir)
    _write_table(examples, spec, job)

    image_refusals = (
        index.quarantine,
        keyed[QUARANTINE_TAG],
        labelled.image_refusals,
    ) | "ImageRefusals" >> beam.Flatten()
    row_refusals = (parsed[QUARANTINE_TAG], labelled.row_refusals) | "RowRefusals" >> beam.Flatten()
    _ = (
        (image_refusals, row_refusals)
        | "AllRefusals" >> beam.Flatten()
        | ("WriteQuarantine" >> WriteQuarantine(job.layout.quarantine_prefix))
    )
    tallies = (
        tars | "TallyTars" >> TallyEach(ARCHIVES, Outcome.INPUT),
        index.summaries | "TallySummaries" >> beam.FlatMap(_summary_tallies),
        rows | "TallyRows" >> TallyEach(LABEL_ROWS, Outcome.INPUT),
        image_refusals | "TallyImageRefusals" >> TallyQuarantine(_tar_stage),
        row_refusals | "TallyRowRefusals" >> TallyQuarantine(LABEL_ROWS),
        examples | "TallyImagesWritten" >> TallyEach(IMAGES, Outcome.WRITTEN),
        examples | "TallyRowsWritten" >> TallyEach(LABEL_ROWS, Outcome.WRITTEN),
    ) | "AllTallies" >> beam.Flatten()
    _ = tallies | "WriteTallies" >> WriteTallies(job.layout.tallies_prefix)


def _write_tfrecords(examples: beam.PCollection, spec: IngestSpec, root: str) -> None:
    index = {name: i for i, name in enumerate(spec.partitions)}
    encode, partition = spec.encode, spec.partition
    serialized = examples | "Encode" >> beam.Map(
        lambda e: (index[partition(e.key)], encode(e).SerializeToString())
    )
    parts = serialized | "SplitByPartition" >> beam.Partition(lambda kv, _: kv[0], len(index))
    for name, part in zip(spec.partitions, parts, strict=True):
        label = name.replace("/", "_")
        _ = (
            part
            | f"Values_{label}" >> beam.Values()
            | f"Write_{label}" >> WriteShards(f"{root}/{name}")
        )


def _write_table(examples: beam.PCollection, spec: IngestSpec, job: IngestJob) -> None:
    table = parse_table_spec(job.table, default_database=f"{job.layout.output_dir}/tables.duckdb")
    schema = spec.labels_bigquery_schema if isinstance(table, BigQueryTable) else spec.labels_schema
    labels_row = spec.labels_row
    _ = (
        examples
        | "LabelsRows" >> beam.Map(labels_row)
        | "WriteLabelsTable" >> WriteTable(table, schema, bigquery_method=job.bigquery_method)
    )


def _count_rows(csvs: Sequence[str]) -> int:
    from datathon_etl.framework.sources.csv_rows import open_text

    total = 0
    for uri in csvs:
        with open_text(uri) as text:
            total += max(sum(1 for _ in text) - 1, 0)
    return total


def _job_from_options(spec: IngestSpec, options: PipelineOptions) -> IngestJob:
    ingest = options.view_as(IngestOptions)
    tar_options = options.view_as(TarOptions)
    tfrecord_dir: str | None = options.view_as(TFRecordOptions).output_tfrecord_dir
    output_dir, _ = check_output_options(options.view_as(OutputOptions))
    tars = match_inputs(tar_options.input_tars or [], "--input_tars")
    csvs = match_inputs(ingest.input_csv or [], "--input_csv")
    csv_files = sorted({path for paths in csvs.values() for path in paths})
    for uri in csv_files:
        try:
            missing = missing_columns(uri, spec.csv_columns)
        except (OSError, BeamIOError, UnicodeDecodeError) as e:
            raise UsageError(f"--input_csv: cannot read {uri}: {e}") from e
        if missing:
            raise UsageError(f"--input_csv: {uri} lacks the column(s) {', '.join(missing)}")
    regex = path_match_regex(options)
    if tar_options.max_member_bytes <= 0:
        raise UsageError("--max_member_bytes must be positive")
    # The labels table is cheap and always useful: by default a DuckDB table.
    table: str = options.view_as(TableOptions).output_table or f"{spec.dataset}_labels"
    try:
        parse_table_spec(table, default_database=f"{output_dir}/tables.duckdb")
    except ValueError as e:
        raise UsageError(f"--output_table: {e}") from e
    try:
        image = image_spec_from_options(options)
    except ValueError as e:
        raise UsageError(str(e)) from e
    return IngestJob(
        tars=tuple(sorted({path for paths in tars.values() for path in paths})),
        csvs=tuple(csv_files),
        layout=RunLayout(output_dir),
        image=image,
        jpg_dir=(ingest.output_jpg_dir or "").rstrip("/") or None,
        tfrecord_dir=(tfrecord_dir or "").rstrip("/") or None,
        table=table,
        bigquery_method=BigQueryWriteMethod(options.view_as(TableOptions).bigquery_write_method),
        path_match_regex=regex,
        max_member_bytes=tar_options.max_member_bytes,
        expected_images=_count_rows(csv_files),
        processes=local_processes(options),
    )


def run(spec: IngestSpec, argv: Sequence[str] | None = None) -> int:
    """Parses flags, runs the ingestion of ``spec``'s dataset, returns the exit code."""
    prog = f"datathon-etl {spec.dataset} ingest"
    try:
        options = parse_flags(
            prog,
            f"Ingest {spec.dataset}: tars of images and label CSVs -> resized JPG tree, "
            "TFRecords per split and view, and a labels table (DuckDB or BigQuery).",
            [
                TarOptions,
                IngestOptions,
                MatchOptions,
                TFRecordOptions,
                OutputOptions,
                TableOptions,
                ImageOptions,
            ],
            argv,
        )
        max_bad_fraction = options.view_as(OutputOptions).max_bad_fraction
        job = _job_from_options(spec, options)
    except UsageError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return EXIT_USAGE
    job.layout.prepare()
    if job.tfrecord_dir:
        delete_stale_shards([f"{job.tfrecord_dir}/{name}" for name in spec.partitions])
    print(
        f"{prog}: {len(job.tars)} tar file(s), {len(job.csvs)} label file(s) with "
        f"{job.expected_images} rows",
        flush=True,
    )
    with beam.Pipeline(options=options) as p:
        build_pipeline(p, spec, job)
    if job.tfrecord_dir:
        write_features_file(
            job.tfrecord_dir,
            spec.feature_specs,
            dataset=spec.dataset,
            folders=list(spec.partitions),
            reader=f"datathon_etl.generated.{spec.dataset}.features",
        )
    parameters: dict[str, Any] = {
        "input_tars": list(options.view_as(TarOptions).input_tars),
        "input_csv": list(options.view_as(IngestOptions).input_csv),
        "output_jpg_dir": job.jpg_dir,
        "output_tfrecord_dir": job.tfrecord_dir,
        "output_table": job.table,
        "image": attrs.asdict(job.image),
    }
    return finish_run(
        job.layout,
        f"{spec.dataset} ingest",
        max_bad_fraction=max_bad_fraction,
        parameters=parameters,
    )
