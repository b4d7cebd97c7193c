"""NIH ChestX-ray14 layout: ``<patient>_<index>.png`` <-> key; a TFRecord folder per split."""

from __future__ import annotations

import re

from datathon_etl.datasets.nih_cxr14.schema import ImageKey, Split

__all__ = ["PARTITIONS", "format_path", "parse_path", "partition"]

_NAME = re.compile(r"(?:.*/)?(\d{8})_(\d{3})\.png")

PARTITIONS = tuple(s.name.lower() for s in Split)
"""TFRecord folders: ``train_val`` and ``test``."""


def parse_path(path: str) -> ImageKey:
    """``[images/]00000001_000.png`` -> its key (the split is set from the lists).

    Raises:
        ValueError: Not ``<8 digits>_<3 digits>.png``.
    """
    match = _NAME.fullmatch(path)
    if match is None:
        raise ValueError(f"nih_cxr14: {path}: not <8 digits>_<3 digits>.png")
    return ImageKey(patient=int(match[1]), index=int(match[2]))


def format_path(key: ImageKey) -> str:
    """The key's file name, as ``Image Index`` and the split lists write it."""
    return f"{key.patient:08d}_{key.index:03d}.png"


def partition(key: ImageKey) -> str:
    """The TFRecord folder of an image: its split."""
    return key.split.name.lower()
