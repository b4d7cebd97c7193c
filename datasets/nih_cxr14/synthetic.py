"""A small, clearly SYNTHETIC NIH ChestX-ray14 sample in the release's layout.

``images/<patient>_<index>.png`` (synthetic chest-like pixels, 8-bit grey),
``Data_Entry_2017_v2020.csv`` with the release's header (its bracketed
columns' unquoted commas included) and findings drawn at random, and the
split as ``train_val_list.txt`` / ``test_list.txt`` (every fifth patient in
test). Every row, image and list line is well formed: ingested, nothing is
quarantined. For ``python -m datathon_etl.datasets.nih_cxr14.demo`` and tests.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from pathlib import Path

import attrs
from PIL import Image

from datathon_etl.datasets.nih_cxr14.schema import Labels
from datathon_etl.framework.schema.fields import FLAGS
from datathon_etl.framework.synthetic import synthetic_cxr_pixels

__all__ = ["FINDINGS", "HEADER", "Sample", "synthetic_cxr_png", "write_sample"]

HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
    "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
)
FINDINGS = tuple(
    f.metadata[FLAGS][1]
    for f in attrs.fields(Labels)
    if FLAGS in f.metadata and f.name != "no_finding"
)
"""The 14 findings as ``Finding Labels`` writes them."""


@attrs.frozen
class Sample:
    """What `write_sample` wrote.

    Attributes:
        images: Each image's file name.
        test: The file names in ``test_list.txt``.
    """

    images: tuple[str, ...]
    test: tuple[str, ...]


def synthetic_cxr_png(seed: int, height: int, width: int) -> bytes:
    """An 8-bit grey PNG of `synthetic_cxr_pixels`."""
    buffer = io.BytesIO()
    Image.fromarray(synthetic_cxr_pixels(seed, height, width), "L").save(buffer, format="PNG")
    return buffer.getvalue()


def write_sample(
    root: Path,
    *,
    patients: int = 20,
    images: int | None = None,
    side: int = 256,
    seed: int = 0,
    png: Callable[[int, int, int], bytes] = synthetic_cxr_png,
) -> Sample:
    """Writes the sample under ``root``; returns what it holds.

    Args:
        root: The folder (made if absent).
        patients: How many patients (one to three images each).
        images: Instead, exactly this many images (as many patients as it takes).
        side: The images' side in pixels.
        seed: The same seed writes the same sample.
        png: Makes an image's bytes from (seed, height, width); a bench at
            scale passes one that cycles through a few made in advance.
    """
    rng = random.Random(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows, names, test, train_val = [HEADER], list[str](), list[str](), list[str]()
    patient = 0
    while (patient < patients) if images is None else (len(names) < images):
        patient += 1
        age, sex = rng.randint(18, 90), rng.choice("MF")
        for index in range(rng.randint(1, 3)):
            if len(names) == images:
                break
            name = f"{patient:08d}_{index:03d}.png"
            (root / "images" / name).write_bytes(png(seed * 100_003 + len(names), side, side))
            findings = rng.sample(FINDINGS, rng.choice((0, 0, 1, 1, 2)))
            view = rng.choice(("PA", "PA", "AP"))
            cells = (name, "|".join(findings) or "No Finding", index, patient, age, sex, view)
            rows.append(",".join(map(str, (*cells, side, side, 0.143, 0.143))))
            names.append(name)
            (test if patient % 5 == 0 else train_val).append(name)
    (root / "Data_Entry_2017_v2020.csv").write_text("\n".join(rows) + "\n")
    (root / "train_val_list.txt").write_text("\n".join(train_val) + "\n")
    (root / "test_list.txt").write_text("\n".join(test) + "\n")
    return Sample(tuple(names), tuple(test))
