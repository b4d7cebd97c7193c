"""Batched inference of a team's model into a predictions table.

* `KerasModelHandler` (`model_handler`): Beam's `ModelHandler` for a
  ``.keras``, ``.h5`` or SavedModel model, local or gs://; `RunInference`
  batches for it and loads the model once per worker process.
* `PrepareExample`, `scale_to_unit` (`preprocess`): serialized example ->
  (ids, normalised image), checked against the model's input.
* `InferenceSpec`, `inference_spec` (`spec`), `InferenceJob`,
  `build_pipeline`, `run`, `command` (`pipeline`): the generic inference
  pipeline that generated ``generated/<dataset>/infer.py`` entry points
  run, given their package's ``dataset.json``.
* `check_saved_model` (`saved_model_check`): a SavedModel's ops against an
  allow-list of pure tensor ops, before it loads.
* `InferenceOptions`, `PredictionsOptions` (`options`): the flags.

Scoring the predictions is `datathon_etl.framework.evaluate`'s job.
"""

from __future__ import annotations

from datathon_etl.framework.inference.model_handler import (
    KerasModelHandler,
    ModelSignature,
    SavedModelPredictor,
    inspect_model,
    load_keras_model,
)
from datathon_etl.framework.inference.options import (
    DEFAULT_BATCH_SIZE,
    InferenceOptions,
    PredictionsOptions,
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
from datathon_etl.framework.inference.saved_model_check import (
    UnsafeModelError,
    check_saved_model,
)
from datathon_etl.framework.inference.spec import InferenceSpec, check_output_width

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_NORMALIZE",
    "EXAMPLES",
    "InferenceJob",
    "InferenceOptions",
    "InferenceSpec",
    "KerasModelHandler",
    "ModelSignature",
    "Normalize",
    "PredictionsOptions",
    "PrepareExample",
    "SavedModelPredictor",
    "UnsafeModelError",
    "build_pipeline",
    "check_output_width",
    "check_saved_model",
    "decode_pixels",
    "inspect_model",
    "job_from_options",
    "load_keras_model",
    "read_signature",
    "resolve_function",
    "run",
    "scale_to_unit",
]
