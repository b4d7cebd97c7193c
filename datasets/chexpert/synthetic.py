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


def write_sample(root: Path, *, patients: int = 20, side: int = 320, seed: int = 0) -> list[str]:
    """Writes the sample under ``root``; returns each image's ``Path`` as the CSVs write it.

    Args:
        root: The folder that gets ``CheXpert-v1.0-small/`` (made if absent).
        patients: How many patients (one or two studies, one or two views each).
        side: The images' side in pixels.
        seed: The same seed writes the same sample.
    """
    rng = random.Random(seed)
    rows: dict[str, list[str]] = {"train": [HEADER], "valid": [HEADER]}
    paths: list[str] = []
    for patient in range(1, patients + 1):
        split = "valid" if patient % 5 == 0 else "train"
        sex, age = rng.choice(("Male", "Female", "Unknown")), rng.randint(18, 90)
        for study in range(1, rng.randint(1, 2) + 1):
            for image, view in enumerate(("frontal", "lateral")[: rng.randint(1, 2)], start=1):
                path = f"{FOLDER}/{split}/patient{patient:05d}/study{study}/view{image}_{view}.jpg"
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                (root / path).write_bytes(synthetic_cxr_jpeg(len(paths) + seed, side, side, 90))
                projection = rng.choice(("AP", "PA")) if view == "frontal" else ""
                codes = [rng.choice(_CODES) for _ in LABELS]
                cells = (path, sex, str(age), view.capitalize(), projection, *codes)
                rows[split].append(",".join(cells))
                paths.append(path)
    for split, lines in rows.items():
        (root / FOLDER / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return paths
