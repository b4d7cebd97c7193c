"""A small, clearly SYNTHETIC CheXpert-v1.0-small sample in the release's layout.

``CheXpert-v1.0-small/{train,valid}/patient<5 digits>/study<N>/view<N>_<view>.jpg``
(synthetic chest-like pixels) and ``train.csv`` / ``valid.csv`` with the
release's header, ``Path`` with the release folder, sex, age, frontal or
lateral (``AP/PA`` blank for lateral images) and the 14 labels drawn from
CheXpert's codes (blank, ``1.0``, ``0.0``, ``-1.0``). Every row and image is
well formed. For ``python -m datathon_etl.datasets.chexpert.demo`` and tests
(the release's CSVs may not be redistributed).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import attrs

from datathon_etl.datasets.chexpert.schema import Labels
from datathon_etl.framework.schema.fields import SOURCE
from datathon_etl.framework.synthetic import synthetic_cxr_jpeg

__all__ = ["FOLDER", "HEADER", "write_sample"]

FOLDER = "CheXpert-v1.0-small"
LABELS = tuple(f.metadata[SOURCE] for f in attrs.fields(Labels))[3:]
"""The 14 labels' columns, in the CSV's order (after Sex, Age, AP/PA)."""
HEADER = ",".join(("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *LABELS))
_CODES = ("", "", "", "0.0", "1.0", "-1.0")
_MAX_PATIENT = 99_999
"""The release writes patient ids in 5 digits."""


def _jpeg(seed: int, height: int, width: int) -> bytes:
    return synthetic_cxr_jpeg(seed, height, width, quality=90)


def write_sample(
    root: Path,
    *,
    patients: int = 20,
    images: int | None = None,
    side: int = 320,
    seed: int = 0,
    jpeg: Callable[[int, int, int], bytes] = _jpeg,
) -> list[str]:
    """Writes the sample under ``root``; returns each image's ``Path`` as the CSVs write it.

    Args:
        root: The folder that gets ``CheXpert-v1.0-small/`` (made if absent).
        patients: How many patients (one or two studies, one or two views each).
        images: Instead, exactly this many images (as many patients as it takes).
        side: The images' side in pixels.
        seed: The same seed writes the same sample.
        jpeg: Makes an image's bytes from (seed, height, width); a bench at
            scale passes one that cycles through a few made in advance.

    Raises:
        ValueError: More patients than 5-digit ids allow.
    """
    rng = random.Random(seed)
    rows: dict[str, list[str]] = {"train": [HEADER], "valid": [HEADER]}
    paths: list[str] = []
    patient = 0
    while (patient < patients) if images is None else (len(paths) < images):
        patient += 1
        if patient > _MAX_PATIENT:
            raise ValueError(f"chexpert sample: more than {_MAX_PATIENT} patients")
        split = "valid" if patient % 5 == 0 else "train"
        sex, age = rng.choice(("Male", "Female", "Unknown")), rng.randint(18, 90)
        for study in range(1, rng.randint(1, 2) + 1):
            for image, view in enumerate(("frontal", "lateral")[: rng.randint(1, 2)], start=1):
                if len(paths) == images:
                    break
                path = f"{FOLDER}/{split}/patient{patient:05d}/study{study}/view{image}_{view}.jpg"
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                (root / path).write_bytes(jpeg(len(paths) + seed, side, side))
                projection = rng.choice(("AP", "PA")) if view == "frontal" else ""
                codes = [rng.choice(_CODES) for _ in LABELS]
                cells = (path, sex, str(age), view.capitalize(), projection, *codes)
                rows[split].append(",".join(cells))
                paths.append(path)
    for split, lines in rows.items():
        (root / FOLDER / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return paths
