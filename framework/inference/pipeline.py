"""The generic inference: TFRecords -> `RunInference` (a team's model) -> predictions table.

Replaces the original ``inference_to_bigquery.py``, which predicted one
example at a time. Here:

* TFRecord files matching ``--input_tfrecord_pattern`` are read with their
  file names (``ReadAllFromTFRecord``);
* Beam's `RunInference` owns batching (``BatchElements``, ``--batch_size``
  per model call), loads the model once per worker process and shares it
  across threads and bundles (see `KerasModelHandler`), and, through
  ``with_exception_handling()``, keeps a dead-letter output;
* pre-processing (`PrepareExample`, run by `RunInference` before batching)
  decodes each example with the generated decoder, decodes its image,
  normalises it and checks its shape against the model's input;
* post-processing maps (ids, output) through the generated
  ``prediction_row`` into the predictions table (DuckDB by default, or
  BigQuery), which a re-run replaces.

A record that does not parse, whose image does not decode or does not fit
the model goes to ``<output_dir>/_quarantine/`` (stage ``infer``, reason
``bad_example``) with the error; the others finish. If a whole batch fails
in the model, each of its records is quarantined the same way.
``<output_dir>/_manifest.json`` counts one stage, ``examples``: input =
written (a predictions row) + quarantined.

The model's output width is checked before anything runs: the driver loads
the model once, reads its input shape and output width, and refuses a
width that is not the label count with the generated row mapper's own error
(exit 2, nothing written). That costs one model load in the driver (well
under a second for the CNNs teams train at a datathon; a few seconds for an
ImageNet-sized network). Should a worker's model disagree anyway, the row
mapper raises in a step without a dead-letter output, so the pipeline fails
before its sink commits: the DuckDB sink replaces the table only after every
row is staged, and BigQuery's file loads start only after every file is
written.

On one machine, ``--direct_running_mode multi_threading --direct_num_workers
<CPUs>`` is the setting to use: the threads share one model, and one
thread's decoding overlaps another's model call (TensorFlow releases the
GIL). ``multi_processing`` starts worker processes that each load the model
and run their own TensorFlow thread pools; on 2 CPUs with a small CNN it
measured about half as fast. See ``bench/inference.py`` for figures.

Exit codes: 0; 1 when more than ``--max_bad_fraction`` of the records was
quarantined; 2 for bad flags, inputs that match nothing, or a model that
does not fit the dataset.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import apache_beam as beam
import attrs
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from datathon_etl.framework.command import PipelineCommand, RunOutputs, TableOutput
from datathon_etl.framework.errors import UsageError
from datathon_etl.framework.inference.model_handler import (
    KerasModelHandler,
    ModelSignature,
    inspect_model,
    load_keras_model,
)
from datathon_etl.framework.inference.options import InferenceOptions, PredictionsOptions
from datathon_etl.framework.inference.preprocess import (
    Normalize,
    PrepareExample,
    record_identity,
    resolve_function,
    scale_to_unit,
)
from datathon_etl.framework.inference.spec import (
    InferenceSpec,
    check_output_width,
    inference_spec,
)
from datathon_etl.framework.manifest import Outcome
from datathon_etl.framework.output_folders import check_apart
from datathon_etl.framework.preflight import check_cloud_resources
from datathon_etl.framework.quarantine import Quarantined, Reason, Stage
from datathon_etl.framework.run_layout import OutputOptions, RunLayout, resolve_output_dir
from datathon_etl.framework.run_records import TallyEach, TallyQuarantine, WriteRunRecords
from datathon_etl.framework.schema.package import Main, entry_point, load_package
from datathon_etl.framework.sources.options import match_inputs
from datathon_etl.framework.tables import (
    PATH_COLUMN,
    BigQueryTable,
    BigQueryWriteMethod,
    WriteTable,
    parse_table_spec,
)
from datathon_etl.framework.tables.options import LabelsSourceOptions, TableOutputOptions

__all__ = [
    "EXAMPLES",
    "Infer",
    "InferenceJob",
    "build_pipeline",
    "command",
    "job_from_options",
    "read_signature",
    "run",
]

EXAMPLES = "examples"
"""Manifest stage: the TFRecord examples (input = written + quarantined)."""


@attrs.frozen
class InferenceJob:
    """One run's validated inputs and outputs.

    Attributes:
        tfrecords: TFRecord file URIs.
        model: The model's URI.
        signature: The model's input shape and output width, as the driver
            read them.
        layout: Where the manifest, quarantine and scratch files go.
        table: The predictions table spec (a bare name lives in
            ``<output_dir>/tables.duckdb``).
        batch_size: Examples per model call.
        normalize: Decoded pixels -> model input.
        bigquery_method: How rows reach a BigQuery table.
        trusted: Load the model without the safety checks (``--trusted_model``).
    """

    tfrecords: tuple[str, ...]
    model: str
    signature: ModelSignature
    layout: RunLayout
    table: str
    batch_size: int = 32
    normalize: Normalize = scale_to_unit
    bigquery_method: BigQueryWriteMethod = BigQueryWriteMethod.FILE_LOADS
    trusted: bool = False


def read_signature(spec: InferenceSpec, model: str, *, trusted: bool = False) -> ModelSignature:
    """Loads the model once in the driver and checks it against the dataset.

    Raises:
        ValueError: The model does not load or is refused by a safety check,
            is not one input -> one vector, or its output width is not the
            label count (the generated row mapper's message).
    """
    signature = inspect_model(load_keras_model(model, trusted=trusted), model)
    check_output_width(spec, signature.output_width)
    return signature


def _prediction_row(
    keyed: tuple[Mapping[str, Any], PredictionResult], spec: InferenceSpec
) -> dict[str, Any]:
    ids, result = keyed
    return spec.prediction_row(ids, result.inference)


def _exception_detail(error: tuple[Any, str, Sequence[str]]) -> str:
    # The dead-letter output holds (type, repr, formatted traceback); its last
    # line is "Type: message" of the exception raised.
    _, message, lines = error
    return lines[-1].strip() if lines else str(message)


def _refused_record(
    failed: tuple[tuple[str, bytes], tuple[Any, str, Sequence[str]]], spec: InferenceSpec
) -> Quarantined:
    (source, serialized), error = failed
    try:
        path = spec.decode(serialized).path
    except Exception:
        path = record_identity(serialized)
    return Quarantined(
        path, Stage.INFER, Reason.BAD_EXAMPLE, detail=_exception_detail(error), source=source
    )


def _refused_batch(
    failed: tuple[Sequence[tuple[Mapping[str, Any], Any]], tuple[Any, str, Sequence[str]]],
) -> Iterator[Quarantined]:
    batch, error = failed
    detail = f"the model failed on this record's batch of {len(batch)}: {_exception_detail(error)}"
    for ids, _ in batch:
        yield Quarantined(str(ids[PATH_COLUMN]), Stage.INFER, Reason.BAD_EXAMPLE, detail=detail)


def _table_schema(spec: InferenceSpec, job: InferenceJob) -> tuple[Any, Any]:
    table = parse_table_spec(job.table, default_database=f"{job.layout.output_dir}/tables.duckdb")
    if isinstance(table, BigQueryTable):
        return table, spec.predictions_bigquery_schema
    return table, spec.predictions_schema


def build_pipeline(p: beam.Pipeline, spec: InferenceSpec, job: InferenceJob) -> None:
    """Adds the inference of ``job`` to ``p``."""
    records = (
        p
        | "TFRecordFiles" >> beam.Create(list(job.tfrecords))
        | "ReadRecords" >> beam.io.ReadAllFromTFRecord(with_filename=True)
    )
    prepare = PrepareExample(
        dataset=spec.dataset,
        image_feature=spec.image_feature,
        decode=spec.decode,
        ids_row=spec.ids_row,
        normalize=job.normalize,
        signature=job.signature,
    )
    handler = KeyedModelHandler(
        KerasModelHandler(job.model, batch_size=job.batch_size, trusted=job.trusted)
    ).with_preprocess_fn(prepare)
    predictions, dead_letters = (
        records | "RunInference" >> RunInference(handler).with_exception_handling()
    )

    rows = predictions | "PredictionRows" >> beam.Map(_prediction_row, spec)
    table, schema = _table_schema(spec, job)
    _ = rows | "WritePredictions" >> WriteTable(table, schema, bigquery_method=job.bigquery_method)

    (bad_records,) = dead_letters.failed_preprocessing
    refusals = (
        bad_records | "RefusedRecords" >> beam.Map(_refused_record, spec),
        dead_letters.failed_inferences | "RefusedBatches" >> beam.FlatMap(_refused_batch),
    ) | "AllRefusals" >> beam.Flatten()

    tallies = (
        records | "TallyInput" >> TallyEach(EXAMPLES, Outcome.INPUT),
        rows | "TallyWritten" >> TallyEach(EXAMPLES, Outcome.WRITTEN),
        refusals | "TallyRefusals" >> TallyQuarantine(EXAMPLES),
    ) | "AllTallies" >> beam.Flatten()
    _ = (refusals, tallies) | "WriteRunRecords" >> WriteRunRecords(job.layout)


def job_from_options(spec: InferenceSpec, options: PipelineOptions) -> InferenceJob:
    """Validates the flags, checks cloud resources, finds the inputs, checks the model.

    Runs nothing.

    Raises:
        UsageError: A missing or bad flag, an unusable cloud resource (see
            `check_cloud_resources`), an input that matches nothing, or a
            model that does not load or does not fit the dataset.
    """
    flags = options.view_as(InferenceOptions)
    # The original had no --output_dir: by default the run's records go beside the model.
    output_dir, _ = resolve_output_dir(
        f"datathon-etl {spec.dataset} infer",
        options,
        f"{flags.keras_model.rstrip('/')}.infer" if flags.keras_model else None,
    )
    if not flags.keras_model:
        raise UsageError("--keras_model is required")
    if flags.batch_size < 1:
        raise UsageError(f"--batch_size must be positive, got {flags.batch_size}")
    try:
        normalize = resolve_function(flags.normalize)
    except ValueError as e:
        raise UsageError(f"--normalize: {e}") from e
    predictions = options.view_as(PredictionsOptions).predictions_table
    labels = options.view_as(LabelsSourceOptions)
    if labels.labels_query or labels.labels_table or labels.labels_db:
        raise UsageError("infer reads no labels: --labels_query/--labels_table/--labels_db")
    tables = options.view_as(TableOutputOptions)
    if predictions and tables.output_table and predictions != tables.output_table:
        raise UsageError(
            "--predictions_table and --output_table both name the table infer writes; "
            f"give one (got {predictions!r} and {tables.output_table!r})"
        )
    table: str = predictions or tables.output_table or f"{spec.dataset}_predictions"
    try:
        parsed = parse_table_spec(table, default_database=f"{output_dir}/tables.duckdb")
    except ValueError as e:
        raise UsageError(f"--predictions_table: {e}") from e
    check_cloud_resources(
        options,
        locations={
            "--input_tfrecord_pattern": flags.input_tfrecord_pattern,
            "--keras_model": flags.keras_model,
            "--output_dir": output_dir,
        },
        tables={"--predictions_table": parsed},
        file_loads=["--predictions_table"]
        if BigQueryWriteMethod(tables.bigquery_write_method) is BigQueryWriteMethod.FILE_LOADS
        else [],
    )
    patterns = match_inputs(flags.input_tfrecord_pattern or [], "--input_tfrecord_pattern")
    check_apart(
        {"--output_dir": output_dir},
        {"--input_tfrecord_pattern": list(patterns), "--keras_model": flags.keras_model},
    )
    try:
        signature = read_signature(spec, flags.keras_model, trusted=flags.trusted_model)
    except ValueError as e:
        raise UsageError(f"--keras_model: {e}") from e
    return InferenceJob(
        tfrecords=tuple(sorted({path for paths in patterns.values() for path in paths})),
        model=flags.keras_model,
        signature=signature,
        layout=RunLayout(output_dir),
        table=table,
        batch_size=flags.batch_size,
        normalize=normalize,
        bigquery_method=BigQueryWriteMethod(tables.bigquery_write_method),
        trusted=flags.trusted_model,
    )


class _DropMemoryWarning(logging.Filter):
    """Drops RunInference's "Resource module is not available" warning.

    Beam imports ``resource`` together with its optional model manager, which
    needs torch; without torch it logs that warning at every model load,
    although it only affects a memory metric.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Resource module is not available")


_MEMORY_WARNING_FILTER = _DropMemoryWarning()


class Infer(PipelineCommand[InferenceJob]):
    """``datathon-etl <dataset> infer`` for the data set of ``spec``."""

    option_classes = (InferenceOptions, PredictionsOptions, OutputOptions, TableOutputOptions)
    required = ("input_tfrecord_pattern", "keras_model")
    output_dir_default = "<--keras_model>.infer, beside the model"

    def __init__(self, spec: InferenceSpec) -> None:
        self.spec = spec
        self.name = f"{spec.dataset} infer"
        self.description = (
            f"Predict {spec.dataset} TFRecords with a team's model (.keras, .h5, SavedModel or "
            ".onnx; refused before it runs if it could touch a file or run Python) in batches "
            "(Beam RunInference) into a predictions table (DuckDB or BigQuery): the ids and "
            "one logit per label."
        )

    def plan(self, options: PipelineOptions) -> InferenceJob:
        """Checks the flags, the cloud resources, the inputs and the model (loaded once)."""
        logging.getLogger().addFilter(_MEMORY_WARNING_FILTER)  # added once, however often run
        return job_from_options(self.spec, options)

    def outputs(self, job: InferenceJob) -> RunOutputs:
        """The ``--output_dir``; the predictions table, for its decoded view."""
        table, _ = _table_schema(self.spec, job)
        return RunOutputs(
            job.layout,
            {"--output_dir": job.layout.output_dir},
            tables=(TableOutput(table, self.spec.predictions_schema),),
        )

    def started(self, job: InferenceJob) -> str:
        """The inputs, the model's signature, the batch size."""
        return (
            f"{len(job.tfrecords)} TFRecord file(s); model {job.model} takes "
            f"{job.signature.describe_input()}, outputs {job.signature.output_width} logits; "
            f"batches of {job.batch_size}"
        )

    def build(self, p: beam.Pipeline, job: InferenceJob) -> None:
        """The inference's steps."""
        build_pipeline(p, self.spec, job)

    def parameters(
        self, options: PipelineOptions, job: InferenceJob, counted: bool
    ) -> dict[str, Any]:
        """The inputs, the model and the table."""
        return {
            "input_tfrecord_pattern": list(
                options.view_as(InferenceOptions).input_tfrecord_pattern
            ),
            "keras_model": job.model,
            "predictions_table": job.table,
            "batch_size": job.batch_size,
            "normalize": options.view_as(InferenceOptions).normalize,
            "trusted_model": job.trusted,
        }

    def finished(self, job: InferenceJob) -> str:
        """Where the predictions are."""
        table = parse_table_spec(
            job.table, default_database=f"{job.layout.output_dir}/tables.duckdb"
        )
        return f"predictions in {table}"


def run(spec: InferenceSpec, argv: Sequence[str] | None = None) -> int:
    """Parses flags, runs the inference of ``spec``'s dataset, returns the exit code."""
    return Infer(spec).main(argv)


def command(package: str | None) -> tuple[InferenceSpec, Main]:
    """A generated package's ``infer``: (its spec, its ``main``)."""
    return entry_point(inference_spec(load_package(package)), run)
