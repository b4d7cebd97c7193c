"""Issue 6, item 5: the batched inference pipeline vs bare ``model.predict`` vs one at a time.

On TFRecords of synthetic 320x320 grayscale JPEGs (q=95, encoded with the
generated ``features.encode``, as the ingestion writes them), with the
training example's CNN (``examples/train_mimic_cxr.py``'s ``build_model``,
width 32: four strided 3x3 convolutions, 14 logits):

- pipeline: ``datathon-etl mimic_cxr infer`` from the call to its return:
  flag parsing, the driver's model check, Beam start-up, reading the
  TFRecords, decoding and normalising each image, `RunInference` in batches
  of 32 (model loaded once, shared by the worker threads:
  ``--direct_running_mode multi_threading``, one thread per CPU), the
  predictions table written to DuckDB, the manifest. It runs twice per
  round, on ``IMAGES`` and on ``SMALL`` images (same number of files, so the
  same parallelism); its throughput is the steady-state rate
  ``(IMAGES - SMALL) / (T_IMAGES - T_SMALL)``, which leaves out the fixed
  start-up (reported apart, with the end-to-end rate);
- bare: ``model.predict(x, batch_size=32)`` on the same decoded, normalised
  images already in memory (decoding not counted);
- original: the original pipeline's method, ``model.predict`` on one example
  at a time, model loaded once, on the first images of the same in-memory
  inputs (again not counting decoding, which favours it);
- for the record, ``predict_on_batch`` in a loop over the same inputs in
  batches of 32: the model call alone, without Keras' ``predict`` loop.

Rates are images per second of wall-clock time (the pipeline and TensorFlow
both use every CPU), the median over interleaved rounds; ratios are the
median of the per-round ratios, and the notes give their range. The
measurement runs in a fresh Python process, so TensorFlow's thread pools are
not those an earlier bench set.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench._core import BenchResult, Row, Target, median_ratio

__all__ = ["bench_inference"]

IMAGES = 1024
SMALL = 256
ONE_AT_A_TIME = 32
ROUNDS = 4
SIZE = 320
QUALITY = 95
BATCH = 32
WIDTH = 32
SHARDS = 4

MIN_FRACTION_OF_BARE = 0.85
MIN_SPEEDUP_VS_ORIGINAL = 10.0

PIPELINE = "pipeline: datathon-etl mimic_cxr infer, steady state"
END_TO_END = "pipeline: the same, end to end (start-up included)"
BARE = "bare: model.predict(batch_size=32), decoded inputs in memory"
ORIGINAL = "original: model.predict one example at a time"
FLOOR = "for the record: predict_on_batch loop, batches of 32"

_EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "train_mimic_cxr.py"


def bench_inference() -> BenchResult:
    """Measures the pipeline, bare predict and one-at-a-time predict in a fresh process."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-m", "bench.inference"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    return _result(measured["rates"], measured["notes"])


def _result(rates: dict[str, list[float]], notes: list[str]) -> BenchResult:
    rows = [
        Row(
            name,
            {
                "img/s": statistics.median(rates[name]),
                "x bare": median_ratio(rates[name], rates[BARE]),
                "x original": median_ratio(rates[name], rates[ORIGINAL]),
            },
        )
        for name in (PIPELINE, END_TO_END, BARE, ORIGINAL, FLOOR)
    ]
    spreads = [
        f"per-round pipeline (steady state) / {other}: "
        + ", ".join(f"{p / o:.2f}" for p, o in zip(rates[PIPELINE], rates[key], strict=True))
        for other, key in (("bare", BARE), ("original", ORIGINAL))
    ]
    return BenchResult(
        name="inference",
        rows=rows,
        targets=[
            Target(
                "pipeline throughput vs bare model.predict",
                median_ratio(rates[PIPELINE], rates[BARE]),
                MIN_FRACTION_OF_BARE,
                unit="x",
            ),
            Target(
                "pipeline throughput vs the original's one at a time",
                median_ratio(rates[PIPELINE], rates[ORIGINAL]),
                MIN_SPEEDUP_VS_ORIGINAL,
                unit="x",
            ),
        ],
        notes=[*notes, *spreads],
    )


def _write_tfrecords(folder: Path, images: int) -> list[bytes]:
    """Writes ``images`` synthetic examples in ``SHARDS`` files; returns the records."""
    import tensorflow as tf

    from datathon_etl.datasets.mimic_cxr.parsing import format_path
    from datathon_etl.datasets.mimic_cxr.schema import Finding, ImageKey, Labels, Split, View
    from datathon_etl.framework.schema.example import Example
    from datathon_etl.framework.synthetic import synthetic_cxr_jpeg
    from datathon_etl.generated.mimic_cxr import features, rows

    folder.mkdir(parents=True)
    labels = Labels(*[Finding.NOT_MENTIONED for _ in rows.LABEL_COLUMNS])
    records = []
    writers = [tf.io.TFRecordWriter(str(folder / f"data-{i:02d}.tfrecord")) for i in range(SHARDS)]
    for index in range(images):
        key = ImageKey(10_000_000 + index, 1, 1, View.FRONTAL, Split.VALID)
        image = synthetic_cxr_jpeg(index, SIZE, SIZE, QUALITY)
        record = features.encode(Example(image, format_path(key), key, labels))
        writers[index % SHARDS].write(record)
        records.append(record)
    for writer in writers:
        writer.close()
    return records


def _seconds(method: Callable[[], object]) -> float:
    started = time.perf_counter()
    method()
    return time.perf_counter() - started


def measure(images: int = IMAGES, small: int = SMALL, rounds: int = ROUNDS) -> dict[str, Any]:
    """Runs the interleaved rounds in this process; returns rates and notes."""
    import numpy as np

    from datathon_etl.framework.inference import (
        PrepareExample,
        inspect_model,
        load_keras_model,
        scale_to_unit,
    )
    from datathon_etl.generated.mimic_cxr import features, rows
    from datathon_etl.generated.mimic_cxr.infer import main as infer

    work = Path(tempfile.mkdtemp(prefix="bench-inference-"))
    try:
        records = _write_tfrecords(work / "full", images)
        _write_tfrecords(work / "small", small)
        build_model = runpy.run_path(str(_EXAMPLE))["build_model"]
        model_path = work / "cnn.keras"
        build_model([SIZE, SIZE, 1], len(rows.TARGET_COLUMNS), WIDTH).save(model_path)
        model = load_keras_model(str(model_path))
        prepare = PrepareExample(
            dataset="mimic_cxr",
            image_feature=features.IMAGE_FEATURE,
            decode=features.decode,
            ids_row=rows.ids_row,
            normalize=scale_to_unit,
            signature=inspect_model(model),
        )
        inputs = np.stack([prepare(("bench", record))[1] for record in records])
        single = inputs[:ONE_AT_A_TIME]
        model.predict(inputs[: 2 * BATCH], batch_size=BATCH, verbose=0)  # trace once
        model.predict(single[:1], verbose=0)
        workers = len(os.sched_getaffinity(0))

        def pipeline(folder: str) -> Callable[[], None]:
            argv = [
                "--input_tfrecord_pattern",
                str(work / folder / "*.tfrecord"),
                "--keras_model",
                str(model_path),
                "--batch_size",
                str(BATCH),
                "--output_dir",
                str(work / f"out-{folder}"),
                "--direct_running_mode",
                "multi_threading",
                "--direct_num_workers",
                str(workers),
            ]

            def run() -> None:
                if infer(argv) != 0:
                    raise RuntimeError("the inference pipeline failed")

            return run

        def bare() -> None:
            model.predict(inputs, batch_size=BATCH, verbose=0)

        def original() -> None:
            for k in range(len(single)):
                model.predict(single[k : k + 1], verbose=0)

        def floor() -> None:
            for start in range(0, len(inputs), BATCH):
                model.predict_on_batch(inputs[start : start + BATCH])

        rates: dict[str, list[float]] = {
            name: [] for name in (PIPELINE, END_TO_END, BARE, ORIGINAL, FLOOR)
        }
        startups = []
        for _ in range(rounds):
            small_seconds = _seconds(pipeline("small"))
            full_seconds = _seconds(pipeline("full"))
            steady = (images - small) / (full_seconds - small_seconds)
            rates[PIPELINE].append(steady)
            rates[END_TO_END].append(images / full_seconds)
            startups.append(full_seconds - images / steady)
            rates[BARE].append(images / _seconds(bare))
            rates[ORIGINAL].append(len(single) / _seconds(original))
            rates[FLOOR].append(images / _seconds(floor))
        sizes = [len(features.decode(r).image) / 1e3 for r in records]
        per_image_ms = 1e3 / statistics.median(rates[FLOOR])
        notes = [
            f"inputs: {images} (and {small}) synthetic {SIZE}x{SIZE} grayscale JPEGs "
            f"q={QUALITY} ({min(sizes):.0f} to {max(sizes):.0f} kB) in {SHARDS} TFRecord "
            f"files; one at a time on the first {len(single)}",
            f"model: examples/train_mimic_cxr.py build_model, width {WIDTH}, input "
            f"{SIZE}x{SIZE}x1, 14 logits; about {per_image_ms:.1f} ms per image in batches "
            f"of {BATCH} (predict_on_batch)",
            f"{workers} CPU(s); pipeline with --direct_running_mode multi_threading "
            f"--direct_num_workers {workers}; its fixed start-up about "
            f"{statistics.median(startups):.1f} s; wall-clock img/s, median of {rounds} "
            "interleaved rounds",
        ]
        return {"rates": rates, "notes": notes}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Measures and prints one JSON line (what `bench_inference` reads)."""
    parser = argparse.ArgumentParser(prog="python -m bench.inference")
    parser.add_argument("--images", type=int, default=IMAGES)
    parser.add_argument("--small", type=int, default=SMALL)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args(argv)
    measured = measure(args.images, args.small, args.rounds)
    print(json.dumps(measured, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
