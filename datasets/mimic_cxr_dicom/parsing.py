"""MIMIC-CXR DICOM layout: MIMIC-CXR-JPG's, with ``.dcm`` files and no metadata table.

Labels come per study as in `datathon_etl.datasets.mimic_cxr_jpg.parsing`,
whose label rows, split rows, studies and TFRecord folders this reuses. The
one per-image table is the split; the view is read from each file's header
(`ImageKey`'s ``dicom=`` fields), so the metadata CSV is not read. Repeated
from MIMIC-CXR-JPG: the path's pattern and format, for ``.dcm``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs

from datathon_etl.datasets.mimic_cxr_dicom.schema import ImageKey, Labels
from datathon_etl.datasets.mimic_cxr_jpg import parsing as jpg
from datathon_etl.datasets.mimic_cxr_jpg.parsing import (
    LABEL_KEY_COLUMNS,
    LABEL_SOURCES,
    PARTITIONS,
    SPLIT_COLUMNS,
    ImagePath,
    PathError,
    Split,
    group_of,
    partition,
    study_path,
)
from datathon_etl.framework.ingest.spec import ImageTable
from datathon_etl.framework.quarantine import Reason

__all__ = [
    "LABELS_PER",
    "LABEL_KEY_COLUMNS",
    "LABEL_SOURCES",
    "NO_LABELS",
    "PARTITIONS",
    "TABLES",
    "ImagePath",
    "format_path",
    "group_of",
    "image_key",
    "parse_label_row",
    "parse_path",
    "parse_split_row",
    "partition",
    "row_key",
]

LABELS_PER = "study"
"""Labels are per study: codegen wires the study-label assembly into ``ingest``."""

NO_LABELS = Labels(**attrs.asdict(jpg.NO_LABELS))
"""The labels of an image whose study has no label row: every label absent."""

_PATH = re.compile(
    r"(?:^|/)(?:files/)?p(?P<group>\d\d)/p(?P<subject>\d+)/s(?P<study>\d+)/"
    r"(?P<dicom>[^/]+)\.dcm$"
)


def format_path(key: ImagePath | ImageKey) -> str:
    """Returns an image's relative path: ``files/p10/p10000032/s50414267/<dicom_id>.dcm``."""
    return f"{study_path(key.subject_id, key.study_id)}/{key.dicom_id}.dcm"


def parse_path(path: str) -> ImagePath:
    """Parses an image path into its ids; `format_path` gives the canonical path back.

    Raises:
        PathError: Not ``[files/]p<NN>/p<subject_id>/s<study_id>/<dicom_id>.dcm``
            (after any prefix), or its ids are not in canonical form.
    """
    match = _PATH.search(path)
    if match is None:
        raise PathError(
            f"mimic_cxr_dicom: {path}: not files/p<NN>/p<subject_id>/s<study_id>/<dicom_id>.dcm"
        )
    key = ImagePath(int(match["subject"]), int(match["study"]), match["dicom"])
    if not format_path(key).endswith(match.group(0).lstrip("/")):
        raise PathError(f"mimic_cxr_dicom: {path}: ids not in canonical form ({format_path(key)})")
    return key


def _dcm(path: str) -> str:
    """MIMIC-CXR-JPG's path of an image -> its DICOM file's."""
    return path.removesuffix(".jpg") + ".dcm"


def row_key(row: Mapping[str, str | None]) -> str:
    """What a split row (its image's path) or a label row (its study) joins on.

    Raises:
        ValueError: An id cell is blank or not an integer.
    """
    key = jpg.row_key(row)
    return _dcm(key) if "dicom_id" in row else key


def parse_split_row(row: Mapping[str, str | None], where: str) -> tuple[str, Split]:
    """Parses one row of ``mimic-cxr-2.0.0-split.csv.gz``: (the image's path, its split).

    Raises:
        SourceRowError: An id is not an integer, or the split is not
            ``train``, ``validate`` or ``test``.
    """
    path, split = jpg.parse_split_row(row, where)
    return _dcm(path), split


def parse_label_row(row: Mapping[str, str | None], where: str) -> tuple[str, Labels]:
    """Parses one CheXpert or NegBio row as MIMIC-CXR-JPG does; header fields at defaults."""
    return jpg.parse_study_labels(Labels, row, where)


TABLES = (ImageTable("split", SPLIT_COLUMNS, parse_split_row, Reason.MISSING_SPLIT, Split),)
"""The one per-image table: the split."""


def image_key(path: ImagePath, split: Split) -> ImageKey:
    """An image's key from its path's ids and its split; the view is read from its header later."""
    return ImageKey(
        subject_id=path.subject_id, study_id=path.study_id, dicom_id=path.dicom_id, split=split
    )
