"""MIMIC-CXR-JPG 2.x layout: path <-> ids, and the metadata, split and label rows.

Labels come per study (``LABELS_PER = "study"``): the ingestion joins each
image on its path with its metadata row and its split row, builds its key
with `image_key`, then joins it on `group_of` with its study's label row
(CheXpert or NegBio, same header). Every function here is pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar, cast

import attrs

from datathon_etl.datasets.mimic_cxr_jpg.schema import Finding, ImageKey, Labels, Split, View
from datathon_etl.framework.ingest.spec import ImageTable
from datathon_etl.framework.quarantine import Reason
from datathon_etl.framework.schema import SourceRowError, UnknownCodeError, parse_source_row
from datathon_etl.framework.schema.fields import SOURCE

__all__ = [
    "LABELS_PER",
    "LABEL_COLUMNS",
    "LABEL_KEY_COLUMNS",
    "LABEL_SOURCES",
    "METADATA_COLUMNS",
    "METADATA_HEADER",
    "NO_LABELS",
    "PARTITIONS",
    "SPLIT_COLUMNS",
    "TABLES",
    "ImagePath",
    "Metadata",
    "PathError",
    "Split",
    "SplitRow",
    "format_path",
    "group_of",
    "image_key",
    "normalise_view",
    "parse_label_row",
    "parse_metadata_row",
    "parse_path",
    "parse_split_row",
    "parse_study_labels",
    "partition",
    "row_key",
    "study_path",
]

T = TypeVar("T")

LABELS_PER = "study"
"""Labels are per study: codegen wires the study-label assembly into ``ingest``."""

METADATA_HEADER = (
    "dicom_id",
    "subject_id",
    "study_id",
    "PerformedProcedureStepDescription",
    "ViewPosition",
    "Rows",
    "Columns",
    "StudyDate",
    "StudyTime",
    "ProcedureCodeSequence_CodeMeaning",
    "ViewCodeSequence_CodeMeaning",
    "PatientOrientationCodeSequence_CodeMeaning",
)
"""``mimic-cxr-2.0.0-metadata.csv.gz``'s columns, in order."""
METADATA_COLUMNS = ("dicom_id", "subject_id", "study_id", "ViewPosition")
"""The metadata columns the ingestion reads (and requires)."""
SPLIT_COLUMNS = ("dicom_id", "study_id", "subject_id", "split")
"""``mimic-cxr-2.0.0-split.csv.gz``'s columns, in order."""
LABEL_KEY_COLUMNS = ("subject_id", "study_id")
"""The label CSVs' id columns, before the 14 labels."""
LABEL_COLUMNS = (*LABEL_KEY_COLUMNS, *(f.metadata[SOURCE] for f in attrs.fields(Labels)))
"""``mimic-cxr-2.0.0-chexpert.csv.gz`` and ``-negbio.csv.gz``'s columns, in order."""
LABEL_SOURCES = ("chexpert", "negbio")
"""The label files (``mimic-cxr-2.0.0-<source>.csv.gz``), CheXpert by default."""

NO_LABELS = Labels(**dict.fromkeys((f.name for f in attrs.fields(Labels)), None))
"""The labels of an image whose study has no label row: every label absent."""

_PATH = re.compile(
    r"(?:^|/)(?:files/)?p(?P<group>\d\d)/p(?P<subject>\d+)/s(?P<study>\d+)/"
    r"(?P<dicom>[^/]+)\.jpg$"
)


class PathError(ValueError):
    """A path that is not in the MIMIC-CXR-JPG layout."""


@attrs.frozen
class ImagePath:
    """The ids an image path holds (the rest of its key comes from the tables)."""

    subject_id: int
    study_id: int
    dicom_id: str


@attrs.frozen
class Metadata:
    """What the ingestion reads of one metadata row."""

    dicom_id: str
    subject_id: int
    study_id: int
    view_position: str = attrs.field(metadata={SOURCE: "ViewPosition"})


@attrs.frozen
class SplitRow:
    """One row of the split table."""

    dicom_id: str
    study_id: int
    subject_id: int
    split: Split


def study_path(subject_id: int, study_id: int) -> str:
    """Returns a study's folder, e.g. ``files/p10/p10000032/s50414267``."""
    return f"files/p{str(subject_id)[:2]}/p{subject_id}/s{study_id}"


def format_path(key: ImagePath | ImageKey) -> str:
    """Returns an image's relative path, e.g. ``files/p10/p10000032/s50414267/<dicom_id>.jpg``."""
    return f"{study_path(key.subject_id, key.study_id)}/{key.dicom_id}.jpg"


def parse_path(path: str) -> ImagePath:
    """Parses an image path into its ids; `format_path` gives the canonical path back.

    Args:
        path: ``[files/]p<NN>/p<subject_id>/s<study_id>/<dicom_id>.jpg``, possibly
            after a prefix (``mimic-cxr-jpg/2.0.0/``, a tar's top folder).

    Returns:
        The ids.

    Raises:
        PathError: The path does not match, its ``p<NN>`` folder is not the
            subject's first two digits, or an id is not in canonical form.
    """
    match = _PATH.search(path)
    if match is None:
        raise PathError(
            f"mimic_cxr_jpg: {path}: not files/p<NN>/p<subject_id>/s<study_id>/<dicom_id>.jpg"
        )
    key = ImagePath(int(match["subject"]), int(match["study"]), match["dicom"])
    if not format_path(key).endswith(match.group(0).lstrip("/")):
        raise PathError(f"mimic_cxr_jpg: {path}: ids not in canonical form ({format_path(key)})")
    return key


def normalise_view(view_position: str) -> View:
    """PA/AP -> frontal, LATERAL/LL -> lateral, blank -> unknown, anything else -> other."""
    return View.from_source(view_position)


def _ids(row: Mapping[str, str | None], where: str, columns: tuple[str, ...]) -> list[int]:
    ids = []
    for column in columns:
        text = (row.get(column) or "").strip()
        if not text.isdigit():
            raise SourceRowError(f"mimic_cxr_jpg: {where}", column, f"not an integer id: {text!r}")
        ids.append(int(text))
    return ids


def row_key(row: Mapping[str, str | None]) -> str:
    """Returns what a CSV row joins on, from its id cells alone.

    A metadata or split row (with ``dicom_id``) joins on its image's path, a
    label row on its study's folder.

    Raises:
        ValueError: An id cell is blank or not an integer.
    """
    subject_id, study_id = _ids(row, "row", ("subject_id", "study_id"))
    if "dicom_id" in row:
        dicom_id = (row.get("dicom_id") or "").strip()
        if not dicom_id:
            raise ValueError("mimic_cxr_jpg: blank dicom_id")
        return format_path(ImagePath(subject_id, study_id, dicom_id))
    return study_path(subject_id, study_id)


def parse_metadata_row(row: Mapping[str, str | None], where: str) -> tuple[str, str]:
    """Parses one row of ``mimic-cxr-2.0.0-metadata.csv.gz``.

    Returns:
        The image's path and its view position (as given). The ids are in the
        path, which the join holds once per image.

    Raises:
        SourceRowError: An id is blank or not an integer, or a column is missing.
    """
    metadata = parse_source_row(Metadata, row, f"mimic_cxr_jpg: {where}")
    path = format_path(ImagePath(metadata.subject_id, metadata.study_id, metadata.dicom_id))
    return path, metadata.view_position


def parse_split_row(row: Mapping[str, str | None], where: str) -> tuple[str, Split]:
    """Parses one row of ``mimic-cxr-2.0.0-split.csv.gz``.

    Returns:
        The image's path and its split.

    Raises:
        SourceRowError: An id is not an integer, or the split is not
            ``train``, ``validate`` or ``test`` (an unknown code).
    """
    split = parse_source_row(SplitRow, row, f"mimic_cxr_jpg: {where}")
    return format_path(ImagePath(split.subject_id, split.study_id, split.dicom_id)), split.split


def parse_label_row(row: Mapping[str, str | None], where: str) -> tuple[str, Labels]:
    """Parses one row of ``mimic-cxr-2.0.0-chexpert.csv.gz`` or ``-negbio.csv.gz``.

    A blank cell is ``not_mentioned``, as in the legacy dataset; labels are
    absent (None) only for studies without a row, never for a blank cell.

    Returns:
        The study's folder (see `group_of`) and its labels.

    Raises:
        SourceRowError: An id is not an integer, a column is missing, or a
            code is not 1.0, 0.0, -1.0 or blank (``unknown_code``).
    """
    return parse_study_labels(Labels, row, where)


def parse_study_labels(
    labels_type: type[T], row: Mapping[str, str | None], where: str
) -> tuple[str, T]:
    """`parse_label_row` into any labels class whose label CSV fields are `Labels`' (a subclass).

    Fields without a source column (read from elsewhere) keep their defaults.
    """
    subject_id, study_id = _ids(row, where, LABEL_KEY_COLUMNS)
    study = study_path(subject_id, study_id)
    values: dict[str, Finding] = {}
    for field in attrs.fields(cast(Any, labels_type)):
        source = field.metadata.get(SOURCE)
        if source is None:
            continue
        text = row.get(source)
        if text is None:
            raise SourceRowError(f"mimic_cxr_jpg: {where}: {study}", source, "missing column")
        try:
            values[field.name] = Finding.from_source(text.strip())
        except UnknownCodeError as e:
            raise SourceRowError(
                f"mimic_cxr_jpg: {where}: {study}", source, str(e), unknown_code=True
            ) from None
    return study, labels_type(**values)


TABLES = (
    ImageTable("metadata", METADATA_COLUMNS, parse_metadata_row, Reason.MISSING_METADATA),
    ImageTable("split", SPLIT_COLUMNS, parse_split_row, Reason.MISSING_SPLIT, Split),
)
"""The per-image tables, in the order `image_key` takes their values."""


def image_key(path: ImagePath, view_position: str, split: Split) -> ImageKey:
    """Builds an image's key from its path's ids, its metadata row's view and its split row's."""
    return ImageKey(
        subject_id=path.subject_id,
        study_id=path.study_id,
        dicom_id=path.dicom_id,
        view_position=view_position,
        view=normalise_view(view_position),
        split=split,
    )


def group_of(key: ImageKey) -> str:
    """Returns the study an image's labels come from (what `parse_label_row` keys by)."""
    return study_path(key.subject_id, key.study_id)


PARTITIONS = tuple(f"{s.name.lower()}/{v.name.lower()}" for s in Split for v in View)
"""TFRecord output folders: one per split and normalised view (unknown included)."""


def partition(key: ImageKey) -> str:
    """Returns the TFRecord folder of an image, e.g. ``train/frontal``."""
    return f"{key.split.name.lower()}/{key.view.name.lower()}"
