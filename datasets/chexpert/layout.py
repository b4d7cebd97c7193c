"""CheXpert layout: ``[CheXpert-v1.0[-small]/]<split>/patient<5>/study<N>/view<N>_<view>.jpg``."""

from __future__ import annotations

import re

from datathon_etl.datasets.chexpert.schema import ImageKey, Split, View

__all__ = ["PARTITIONS", "format_path", "parse_path", "partition"]

_PATH = re.compile(
    r"(?:.*/)?(?:CheXpert-v1\.0(?:-small)?/)?(?P<split>train|valid)/patient(?P<patient>\d{5})/"
    r"study(?P<study>\d+)/view(?P<image>\d+)_(?P<view>frontal|lateral)\.jpg"
)

PARTITIONS = tuple(f"{s.name.lower()}/{v.name.lower()}" for s in Split for v in View)
"""TFRecord folders: one per split and view."""


def parse_path(path: str) -> ImageKey:
    """A path as the CSV's ``Path`` or an image's file name writes it -> its key.

    Raises:
        ValueError: Not in the layout, or ids not written as `format_path` writes them.
    """
    match = _PATH.fullmatch(path)
    if match is None:
        raise ValueError(
            f"chexpert: {path}: not <split>/patient<5 digits>/study<N>/view<N>_<view>.jpg"
        )
    key = ImageKey(
        patient=int(match["patient"]),
        study=int(match["study"]),
        image=int(match["image"]),
        view=View[match["view"].upper()],
        split=Split[match["split"].upper()],
    )
    if not path.endswith(format_path(key)):
        raise ValueError(f"chexpert: {path}: ids not in canonical form ({format_path(key)})")
    return key


def format_path(key: ImageKey) -> str:
    """The path less the release folder: ``train/patient00001/study1/view1_frontal.jpg``."""
    return (
        f"{key.split.name.lower()}/patient{key.patient:05d}/study{key.study}/"
        f"view{key.image}_{key.view.name.lower()}.jpg"
    )


def partition(key: ImageKey) -> str:
    """The TFRecord folder of an image: ``<split>/<view>``."""
    return f"{key.split.name.lower()}/{key.view.name.lower()}"
