"""MIMIC-CXR 2.0.0 DICOM: the key and labels of MIMIC-CXR-JPG, with fields from each header.

The DICOM release has the JPG release's tree (``.dcm`` for ``.jpg``) and is
labelled by the same split and CheXpert/NegBio CSVs, so the declarations
extend MIMIC-CXR-JPG's: the view comes from the file's own ``ViewPosition``
(the metadata CSV's column was taken from it), and a few header attributes
become metadata columns. No other header attribute is read.
"""

from __future__ import annotations

import attrs

from datathon_etl.datasets.mimic_cxr_jpg import schema as jpg
from datathon_etl.datasets.mimic_cxr_jpg.schema import Finding, Split, View
from datathon_etl.framework.schema import Dataset, column

__all__ = ["DATASET", "Finding", "ImageKey", "Labels", "Split", "View"]

_HEADER = "From the DICOM header's {}"


@attrs.frozen
class ImageKey(jpg.ImageKey):
    """Identifies one image: its ids (in its path), its split, and its view (from its header)."""

    view_position: str = column(
        "ViewPosition as the DICOM header gives it (PA, AP, LATERAL, LL, ...); empty when the "
        "header leaves it blank or lacks it.",
        dicom="ViewPosition",
        default="",
    )
    view: View = column(
        "The view, normalised from the header's ViewPosition.",
        dicom="ViewPosition",
        default=View.UNKNOWN,
    )


@attrs.frozen
class Labels(jpg.Labels):
    """The 14 labels of the image's study, then metadata from the image's DICOM header."""

    rows: int = column(
        "The image's rows (height) in pixels, as stored. " + _HEADER.format("Rows."),
        dicom="Rows",
        target=False,
        default=0,
    )
    columns: int = column(
        "The image's columns (width) in pixels, as stored. " + _HEADER.format("Columns."),
        dicom="Columns",
        target=False,
        default=0,
    )
    pixel_spacing_row: float | None = column(
        "The distance in mm between the centres of adjacent rows; null where the header has "
        "none. " + _HEADER.format("PixelSpacing, first value."),
        dicom="PixelSpacing",
        dicom_value=0,
        target=False,
        default=None,
    )
    pixel_spacing_column: float | None = column(
        "The distance in mm between the centres of adjacent columns; null where the header "
        "has none. " + _HEADER.format("PixelSpacing, second value."),
        dicom="PixelSpacing",
        dicom_value=1,
        target=False,
        default=None,
    )
    patient_sex: str | None = column(
        "M, F or O; null where the header leaves it blank. " + _HEADER.format("PatientSex."),
        dicom="PatientSex",
        target=False,
        default=None,
    )
    manufacturer: str | None = column(
        "The equipment's manufacturer; null where blank. " + _HEADER.format("Manufacturer."),
        dicom="Manufacturer",
        target=False,
        default=None,
    )


DATASET = Dataset(
    name="mimic_cxr_dicom",
    description=(
        "MIMIC-CXR 2.0.0 chest radiographs as DICOM, the primary PhysioNet release: files "
        "under `files/p<NN>/p<subject_id>/s<study_id>/<dicom_id>.dcm`, labelled with "
        "MIMIC-CXR-JPG's official split by patient and 14 CheXpert or NegBio labels per study "
        "(null for studies without a label row). The view and a few metadata columns come from "
        "each file's DICOM header; no other header attribute is copied anywhere."
    ),
    key=ImageKey,
    labels=Labels,
    split="split",
    patient="subject_id",
    study="study_id",
    view="view",
    image_feature="jpg_bytes",
    path_description=(
        "The relative path to the .dcm file: files/p<NN>/p<subject_id>/s<study_id>/<dicom_id>.dcm."
    ),
    layout="datathon_etl.datasets.mimic_cxr_dicom.parsing",
)
