"""MIMIC-CXR legacy layout: path <-> key, and CSV row -> labels."""

from __future__ import annotations

import re
from collections.abc import Mapping

from datathon_etl.datasets.mimic_cxr.schema import ImageKey, Labels, Split, View
from datathon_etl.framework.schema import SourceRowError, parse_source_row

__all__ = [
    "PARTITIONS",
    "PathError",
    "format_path",
    "parse_label_row",
    "parse_path",
    "partition",
]

_PATH = re.compile(
    r"(?P<dataset>train|valid)/p(?P<patient>\d+)/s(?P<study>\d+)/"
    r"view(?P<image>\d+)_(?P<view>frontal|lateral|other)\.jpg"
)
_SPLITS = {"train": Split.TRAIN, "valid": Split.VALID}


class PathError(ValueError):
    """A path that is not in the legacy MIMIC-CXR layout."""


def format_path(key: ImageKey) -> str:
    """Returns the relative path of an image, e.g. ``train/p1/s01/view1_frontal.jpg``.

    Studies are written with at least two digits, as in the released data.
    """
    return (
        f"{key.dataset.name.lower()}/p{key.patient}/s{key.study:02d}/"
        f"view{key.image}_{key.view.name.lower()}.jpg"
    )


def parse_path(path: str) -> ImageKey:
    """Parses a relative image path into its key; `format_path` gives it back.

    Args:
        path: ``(train|valid)/p<patient>/s<study>/view<image>_<view>.jpg``,
            possibly after a prefix (tar members often have one).

    Returns:
        The key.

    Raises:
        PathError: The path does not match, or writes an id in a form that
            would not format back to the same path (e.g. ``s1`` for ``s01``).
    """
    match = _PATH.search(path)
    if match is None or not path.endswith(match.group(0)):
        raise PathError(f"mimic_cxr: {path}: not (train|valid)/p<n>/s<n>/view<n>_<view>.jpg")
    key = ImageKey(
        patient=int(match["patient"]),
        study=int(match["study"]),
        image=int(match["image"]),
        view=View[match["view"].upper()],
        dataset=_SPLITS[match["dataset"]],
    )
    if format_path(key) != match.group(0):
        raise PathError(
            f"mimic_cxr: {path}: ids not in canonical form (expected {format_path(key)})"
        )
    return key


def parse_label_row(row: Mapping[str, str | None], where: str) -> tuple[ImageKey, Labels]:
    """Parses one row of ``train.csv.gz`` / ``valid.csv.gz``.

    Args:
        row: The row as `csv.DictReader` yields it.
        where: ``file:row N`` for error messages.

    Returns:
        The image key (from the row's path) and its labels.

    Raises:
        PathError: The row's path does not parse.
        SourceRowError: A column is missing, a code is unknown, or the
            ``view`` column disagrees with the path.
    """
    path = row.get("path")
    if not path:
        raise SourceRowError(f"mimic_cxr: {where}", "path", "missing or blank")
    key = parse_path(path)
    view = (row.get("view") or "").strip().lower()
    if view and view != key.view.name.lower():
        raise SourceRowError(
            f"mimic_cxr: {where}: {path}", "view", f"{view!r} disagrees with the path"
        )
    return key, parse_source_row(Labels, row, f"mimic_cxr: {where}: {path}")


PARTITIONS = tuple(f"{s.name.lower()}/{v.name.lower()}" for s in Split for v in View)
"""TFRecord output folders: one per split and view (other views included)."""


def partition(key: ImageKey) -> str:
    """Returns the TFRecord folder of an image, e.g. ``train/frontal``."""
    return f"{key.dataset.name.lower()}/{key.view.name.lower()}"
