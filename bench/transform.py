"""Issue 8, item 1: speed and quality of `transform_image` on MIMIC-CXR-sized JPEGs.

On one CPU, over a dozen synthetic 2544x3056 quality-95 grayscale JPEGs (1.4 to
1.8 MB, like MIMIC-CXR-JPG), to a 320x320 quality-95 JPEG:

- ours: `transform_image` (Pillow DCT-scaled decode + bilinear resize + encode);
- the original pipelines' method: TF ``decode_jpeg`` at full size, ``resize``
  bilinear without antialiasing, ``encode_jpeg``;
- the floor: decoding only, at the DCT scale our method uses;
- for the record, other ways to do the same (other Pillow filters; OpenCV and
  simplejpeg if installed, which they are not by default).

Speeds are the median over interleaved rounds, by this process's CPU time (the
cost on one core, robust to other processes on a shared machine; wall-clock
figures are reported beside them); ratios are medians of the per-round ratios,
so every ratio compares methods measured in the same round.
Quality is the PSNR of each (decoded) 320x320 result against a float reference:
full decode and Lanczos resampling in 32-bit float.
"""

from __future__ import annotations

import io
import os
import statistics
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from bench._core import (
    BenchResult,
    Row,
    Target,
    interleaved_rates,
    median_ratio,
    pinned_to_one_cpu,
)
from datathon_etl.framework.images import ImageSpec, transform_image
from datathon_etl.framework.synthetic import synthetic_cxr_jpeg

__all__ = ["bench_transform"]

IMAGES = 12
ROUNDS = 15
SOURCE_HEIGHT, SOURCE_WIDTH = 3056, 2544
SIZE = 320
QUALITY = 95

MIN_SPEEDUP_VS_ORIGINAL = 1.15
MIN_FRACTION_OF_FLOOR = 0.90
MIN_PSNR_DB = 49.0

OURS = "transform_image"
ORIGINAL = "original: TF full decode + bilinear (no antialias)"
FLOOR = "floor: decode only at our DCT scale"

Method = Callable[[bytes], bytes | None]


def bench_transform() -> BenchResult:
    """Measures `transform_image` against the original method and the floor."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with pinned_to_one_cpu() as cpu:
        # Imported while pinned, so TF sizes its thread pools for one CPU.
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            pass  # Already initialised by an earlier bench: the pinning still holds.
        images = [
            synthetic_cxr_jpeg(seed, SOURCE_HEIGHT, SOURCE_WIDTH, QUALITY) for seed in range(IMAGES)
        ]
        references = [_reference(data) for data in images]
        methods = _methods(tf)
        outputs = {name: [method(data) for data in images] for name, method in methods.items()}
        rates = interleaved_rates(methods, images, ROUNDS)
    scale = _floor_scale(images[0])

    rows = []
    psnr_worst: dict[str, float] = {}
    for name in methods:
        values: dict[str, float | str] = {
            "img/s": statistics.median(rates.cpu[name]),
            "x original": median_ratio(rates.cpu[name], rates.cpu[ORIGINAL]),
            "x floor": median_ratio(rates.cpu[name], rates.cpu[FLOOR]),
            "wall img/s": statistics.median(rates.wall[name]),
            "wall x original": median_ratio(rates.wall[name], rates.wall[ORIGINAL]),
        }
        encoded = [out for out in outputs[name] if out is not None]
        if encoded:
            psnrs = [_psnr(out, ref) for out, ref in zip(encoded, references, strict=True)]
            psnr_worst[name] = min(psnrs)
            values["PSNR dB"] = statistics.mean(psnrs)
            values["worst PSNR dB"] = min(psnrs)
        rows.append(Row(name, values))

    sizes = [len(data) / 1e6 for data in images]
    return BenchResult(
        name="transform",
        rows=rows,
        targets=[
            Target(
                "transform_image speed vs original",
                median_ratio(rates.cpu[OURS], rates.cpu[ORIGINAL]),
                MIN_SPEEDUP_VS_ORIGINAL,
                "x",
            ),
            Target(
                "transform_image speed vs floor",
                median_ratio(rates.cpu[OURS], rates.cpu[FLOOR]),
                MIN_FRACTION_OF_FLOOR,
                "x",
            ),
            Target(
                "transform_image worst PSNR vs float Lanczos", psnr_worst[OURS], MIN_PSNR_DB, " dB"
            ),
        ],
        notes=[
            f"inputs: {IMAGES} synthetic {SOURCE_WIDTH}x{SOURCE_HEIGHT} grayscale JPEGs,"
            f" q={QUALITY}, {min(sizes):.2f} to {max(sizes):.2f} MB;"
            f" output {SIZE}x{SIZE} grayscale JPEG q={QUALITY}",
            f"one CPU (pinned to cpu {cpu}); img/s and ratios by process CPU time"
            f" (wall clock: 'wall' columns), median of {ROUNDS} interleaved rounds;"
            f" DCT scale 1/{scale}",
        ],
    )


def _methods(tf: Any) -> dict[str, Method]:
    """The methods to time, by row label; ours, original and floor first."""
    spec = ImageSpec(height=SIZE, width=SIZE, channels=1, format="jpeg", jpeg_quality=QUALITY)

    def ours(data: bytes) -> bytes:
        return transform_image(data, spec)

    def original(data: bytes) -> bytes:
        pixels = tf.io.decode_jpeg(data, channels=1)
        resized = tf.image.resize(pixels, (SIZE, SIZE), method="bilinear", antialias=False)
        rounded = tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)
        return bytes(tf.io.encode_jpeg(rounded, quality=QUALITY).numpy())

    def floor(data: bytes) -> None:
        # The same decoder set-up as transform_image: DCT scale, luminance, one read.
        image = Image.open(io.BytesIO(data))
        image.decodermaxblock = len(data)
        image.draft("L", (SIZE, SIZE))
        image.load()

    methods: dict[str, Method] = {OURS: ours, ORIGINAL: original, FLOOR: floor}
    for resample in (Image.Resampling.BOX, Image.Resampling.LANCZOS):
        methods[f"alt: Pillow draft + {resample.name}"] = _pillow_draft(resample)
    methods.update(_optional_methods())
    return methods


def _pillow_draft(resample: Image.Resampling) -> Method:
    def method(data: bytes) -> bytes:
        image = Image.open(io.BytesIO(data))
        image.decodermaxblock = len(data)
        image.draft("L", (SIZE, SIZE))
        buffer = io.BytesIO()
        image.resize((SIZE, SIZE), resample).save(buffer, format="JPEG", quality=QUALITY)
        return buffer.getvalue()

    return method


def _optional_methods() -> dict[str, Method]:
    """OpenCV and simplejpeg alternatives, when installed (dev dependencies only)."""
    try:
        import cv2
    except ImportError:
        return {}
    cv2.setNumThreads(1)
    methods: dict[str, Method] = {}

    def opencv(data: bytes) -> bytes:
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_4)
        if pixels is None:
            raise ValueError("OpenCV could not decode the JPEG")
        resized = cv2.resize(pixels, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
        return bytes(cv2.imencode(".jpg", resized, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])[1])

    methods["alt: OpenCV REDUCED_GRAYSCALE_4 + INTER_AREA"] = opencv
    try:
        import simplejpeg
    except ImportError:
        return methods

    def simple(data: bytes) -> bytes:
        pixels = simplejpeg.decode_jpeg(data, colorspace="GRAY", min_height=SIZE, min_width=SIZE)
        resized = cv2.resize(pixels, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
        return bytes(
            simplejpeg.encode_jpeg(resized[:, :, None], quality=QUALITY, colorspace="GRAY")
        )

    methods["alt: simplejpeg scaled decode + cv2 INTER_AREA"] = simple
    return methods


def _reference(data: bytes) -> npt.NDArray[np.float64]:
    """Full decode, then Lanczos in 32-bit float: the quality reference."""
    with Image.open(io.BytesIO(data)) as image:
        resized = image.convert("F").resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.float64)


def _psnr(encoded: bytes, reference: npt.NDArray[np.float64]) -> float:
    with Image.open(io.BytesIO(encoded)) as image:
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
    mse = float(np.mean((pixels - reference) ** 2))
    return float("inf") if mse == 0 else 10 * float(np.log10(255.0**2 / mse))


def _floor_scale(data: bytes) -> int:
    """The DCT scale denominator Pillow picks for our output size."""
    with Image.open(io.BytesIO(data)) as image:
        width = image.width
        image.draft("L", (SIZE, SIZE))
        return round(width / image.width)
