"""Batched Keras inference into predictions tables, and per-label evaluation.

* `KerasModelHandler` (`model_handler`): Beam's `ModelHandler` for a
  ``.keras``, ``.h5`` or SavedModel model, local or gs://; `RunInference`
  batches for it and loads the model once per worker process.
* `PrepareExample`, `scale_to_unit` (`preprocess`): serialized example ->
  (ids, normalised image), checked against the model's input.
* `InferenceSpec` (`spec`), `InferenceJob`, `build_pipeline`, `run`
  (`pipeline`): the generic inference pipeline that generated
  ``generated/<dataset>/infer.py`` entry points run.
* `EvaluationSpec`, `LabelCodes`, `evaluation_sql`, `evaluate`,
  `run_evaluation` (`evaluate`): per-label AUROC, prevalence and counts,
  computed in SQL (DuckDB or BigQuery), the ``evaluate`` entry points.
* `InferenceOptions`, `PredictionsOptions`, `EvaluationOptions`,
  `UncertainPolicy` (`options`): the flags.
"""

from __future__ import annotations

from datathon_etl.framework.inference.evaluate import (
    EVALUATION_SCHEMA,
    EvaluationSpec,
    LabelCodes,
    evaluate,
    evaluation_sql,
    format_leaderboard,
    run_evaluation,
)
from datathon_etl.framework.inference.model_handler import (
    KerasModelHandler,
    ModelSignature,
    SavedModelPredictor,
    inspect_model,
    load_keras_model,
)
from datathon_etl.framework.inference.options import (
    DEFAULT_BATCH_SIZE,
    EvaluationOptions,
    InferenceOptions,
    PredictionsOptions,
    UncertainPolicy,
)
from datathon_etl.framework.inference.pipeline import (
    EXAMPLES,
    InferenceJob,
    build_pipeline,
    job_from_options,
    read_signature,
    run,
)
from datathon_etl.framework.inference.preprocess import (
    DEFAULT_NORMALIZE,
    Normalize,
    PrepareExample,
    decode_pixels,
    resolve_function,
    scale_to_unit,
)
from datathon_etl.framework.inference.spec import InferenceSpec, check_output_width

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_NORMALIZE",
    "EVALUATION_SCHEMA",
    "EXAMPLES",
    "EvaluationOptions",
    "EvaluationSpec",
    "InferenceJob",
    "InferenceOptions",
    "InferenceSpec",
    "KerasModelHandler",
    "LabelCodes",
    "ModelSignature",
    "Normalize",
    "PredictionsOptions",
    "PrepareExample",
    "SavedModelPredictor",
    "UncertainPolicy",
    "build_pipeline",
    "check_output_width",
    "decode_pixels",
    "evaluate",
    "evaluation_sql",
    "format_leaderboard",
    "inspect_model",
    "job_from_options",
    "load_keras_model",
    "read_signature",
    "resolve_function",
    "run",
    "run_evaluation",
    "scale_to_unit",
]
