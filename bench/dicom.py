"""Issue 20, item 2: DICOM chest images of real size to 320x320, on one CPU.

Inputs, made at bench time from the real NEMA WG04 chest CR committed for the
tests (``tests/data/dicom/RG1_J2KI.dcm``: 1955x1841, 15 bits stored,
MONOCHROME1, window 15000/30000): its pixels resized to 2544x3056 (MIMIC-CXR's
usual size) with detector-like noise added (each image its own seed), written as

- uncompressed: Explicit VR Little Endian, 16 bits allocated, 15.5 MB;
- JPEG 2000 lossless (reversible 5/3, OpenJPEG's 5 decomposition levels), the
  header otherwise the original's.

Per image, to a 320x320 grayscale JPEG at quality 95 (the pipelines' default
output), windowed with the file's window:

- ours: `transform_image` (uncompressed: the 16-bit values shrunk by area
  then windowed; JPEG 2000: decoded at a reduced resolution level);
- a user's loop: ``pydicom.dcmread(...).pixel_array``, the window in float32
  numpy, MONOCHROME1 inverted, ``cv2.resize`` INTER_AREA, ``cv2.imencode``
  (JPEG, quality 95);
- the floor: reading plus decoding (uncompressed: ``dcmread`` and the pixel
  array; JPEG 2000: the codestream decoded at the level ours uses).

Speeds are medians over interleaved rounds by this process's CPU time (see
`bench.transform`). Quality is the PSNR of each output against a float
reference: full decode, the window in float64 at full resolution, then an area
(box) resize in float.
"""

from __future__ import annotations

import io
import statistics
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pydicom
from PIL import Image
from pydicom.encaps import encapsulate, get_frame
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless

from bench._core import (
    BenchResult,
    Row,
    Target,
    interleaved_rates,
    median_ratio,
    pinned_to_one_cpu,
)
from datathon_etl.framework.images import ImageSpec, transform_image
from datathon_etl.framework.images.dicom import _reduce_level

__all__ = ["bench_dicom"]

SOURCE = Path(__file__).parent.parent / "tests" / "data" / "dicom" / "RG1_J2KI.dcm"
IMAGES = 4
ROUNDS = 7
HEIGHT, WIDTH = 3056, 2544
SIZE = 320
QUALITY = 95
NOISE = 40.0  # stored units, about a real CR's quantum noise at this window

MIN_SPEEDUP_J2K = 3.0
MIN_SPEEDUP_UNCOMPRESSED = 1.0
MIN_PSNR_DB = 45.0

OURS = "ours: transform_image"
USER = "user: pixel_array + numpy window + cv2 INTER_AREA"
FLOOR = "floor: read + decode"

Method = Callable[[bytes], object]


def bench_dicom() -> BenchResult:
    """Measures `transform_image` on DICOM against a user's loop and the floor."""
    with pinned_to_one_cpu() as cpu:
        import cv2

        cv2.setNumThreads(1)
        kinds = {"uncompressed": _uncompressed, "JPEG 2000": _jpeg2000}
        rows, targets, notes = [], [], []
        for kind, make in kinds.items():
            images = [make(_pixels(seed)) for seed in range(IMAGES)]
            methods = _methods(cv2, kind)
            references = [_reference(data) for data in images]
            outputs = {name: [method(data) for data in images] for name, method in methods.items()}
            rates = interleaved_rates(methods, images, ROUNDS)
            psnr_worst: dict[str, float] = {}
            for name in methods:
                values: dict[str, float | str] = {
                    "img/s": statistics.median(rates.cpu[name]),
                    "x user": median_ratio(rates.cpu[name], rates.cpu[USER]),
                    "x floor": median_ratio(rates.cpu[name], rates.cpu[FLOOR]),
                    "wall img/s": statistics.median(rates.wall[name]),
                }
                encoded = [out for out in outputs[name] if isinstance(out, bytes)]
                if encoded:
                    psnrs = [_psnr(out, ref) for out, ref in zip(encoded, references, strict=True)]
                    psnr_worst[name] = min(psnrs)
                    values["PSNR dB"] = statistics.mean(psnrs)
                    values["worst PSNR dB"] = min(psnrs)
                rows.append(Row(f"{kind}: {name}", values))
            speedup = MIN_SPEEDUP_J2K if kind == "JPEG 2000" else MIN_SPEEDUP_UNCOMPRESSED
            targets += [
                Target(
                    f"{kind}: ours vs user's loop",
                    median_ratio(rates.cpu[OURS], rates.cpu[USER]),
                    speedup,
                    "x",
                ),
                Target(
                    f"{kind}: ours worst PSNR vs float reference",
                    psnr_worst[OURS],
                    MIN_PSNR_DB,
                    " dB",
                ),
            ]
            sizes = [len(data) / 1e6 for data in images]
            notes.append(
                f"{kind}: {IMAGES} images {WIDTH}x{HEIGHT}, {min(sizes):.2f} to {max(sizes):.2f} MB"
            )
    level = _reduce_level(WIDTH, HEIGHT, (0.0, 0.0, float(WIDTH), float(HEIGHT)), (SIZE, SIZE))
    notes += [
        f"from the NEMA WG04 chest CR RG1 (15 bits, MONOCHROME1, window 15000/30000),"
        f" resized, noise sigma {NOISE:g}; output {SIZE}x{SIZE} JPEG q={QUALITY};"
        f" JPEG 2000 decoded at level {level}",
        f"one CPU (pinned to cpu {cpu}); img/s and ratios by process CPU time,"
        f" median of {ROUNDS} interleaved rounds",
    ]
    return BenchResult(name="dicom", rows=rows, targets=targets, notes=notes)


def _pixels(seed: int) -> npt.NDArray[np.uint16]:
    """The real chest CR at 2544x3056, with its own noise: 15-bit stored values."""
    source = pydicom.dcmread(SOURCE).pixel_array.astype(np.float32)
    resized = np.asarray(
        Image.fromarray(source).resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC), np.float32
    )
    noise = np.random.default_rng(seed).normal(0.0, NOISE, resized.shape).astype(np.float32)
    pixels: npt.NDArray[np.uint16] = np.clip(np.rint(resized + noise), 0, 2**15 - 1).astype(
        np.uint16
    )
    return pixels


def _header() -> pydicom.Dataset:
    ds = pydicom.dcmread(SOURCE)
    ds.Rows, ds.Columns = HEIGHT, WIDTH
    return ds


def _uncompressed(pixels: npt.NDArray[np.uint16]) -> bytes:
    ds = _header()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PixelData = pixels.tobytes()
    ds["PixelData"].VR = "OW"
    return _save(ds)


def _jpeg2000(pixels: npt.NDArray[np.uint16]) -> bytes:
    buffer = io.BytesIO()
    # Pillow writes a raw codestream (.j2k) with 6 resolutions (5 levels), reversible.
    Image.fromarray(pixels).save(buffer, format="JPEG2000", codec="j2k", no_jp2=True)
    ds = _header()
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    ds.PixelData = encapsulate([buffer.getvalue()])
    return _save(ds)


def _save(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _methods(cv2: object, kind: str) -> dict[str, Method]:
    spec = ImageSpec(height=SIZE, width=SIZE, format="jpeg", jpeg_quality=QUALITY)

    def ours(data: bytes) -> bytes:
        return transform_image(data, spec)

    def user(data: bytes) -> bytes:
        ds = pydicom.dcmread(io.BytesIO(data))
        pixels = ds.pixel_array.astype(np.float32)
        centre, width = float(ds.WindowCenter), float(ds.WindowWidth)
        pixels = np.clip((pixels - (centre - width / 2)) / width, 0.0, 1.0)
        if ds.PhotometricInterpretation == "MONOCHROME1":
            pixels = 1.0 - pixels
        small = cv2.resize(pixels, (SIZE, SIZE), interpolation=cv2.INTER_AREA)  # type: ignore[attr-defined]
        grey = (small * 255.0 + 0.5).astype(np.uint8)
        quality = [cv2.IMWRITE_JPEG_QUALITY, QUALITY]  # type: ignore[attr-defined]
        return bytes(cv2.imencode(".jpg", grey, quality)[1])  # type: ignore[attr-defined]

    def floor_uncompressed(data: bytes) -> None:
        pydicom.dcmread(io.BytesIO(data)).pixel_array  # noqa: B018 (decoding is the point)

    def floor_jpeg2000(data: bytes) -> None:
        ds = pydicom.dcmread(io.BytesIO(data))
        codestream = get_frame(ds.PixelData, 0, number_of_frames=1)
        level = _reduce_level(WIDTH, HEIGHT, (0.0, 0.0, float(WIDTH), float(HEIGHT)), (SIZE, SIZE))
        with Image.open(io.BytesIO(codestream)) as image:
            image.reduce = level  # type: ignore[method-assign,assignment]
            image.load()

    floor = floor_jpeg2000 if kind == "JPEG 2000" else floor_uncompressed
    return {OURS: ours, USER: user, FLOOR: floor}


def _reference(data: bytes) -> npt.NDArray[np.float64]:
    """Full decode, the window in float64 at full size, MONOCHROME1 inverted, area resize."""
    ds = pydicom.dcmread(io.BytesIO(data))
    stored = ds.pixel_array.astype(np.float64)
    centre, width = float(ds.WindowCenter), float(ds.WindowWidth)
    grey = 1.0 - np.clip((stored - (centre - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)
    small = Image.fromarray(grey.astype(np.float32)).resize((SIZE, SIZE), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float64) * 255.0


def _psnr(encoded: bytes, reference: npt.NDArray[np.float64]) -> float:
    with Image.open(io.BytesIO(encoded)) as image:
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
    mse = float(np.mean((pixels - reference) ** 2))
    return float("inf") if mse == 0 else 10 * float(np.log10(255.0**2 / mse))
