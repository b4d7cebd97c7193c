"""MIMIC-CXR-JPG 2.0.0 / 2.1.0: the image key, the 14 study labels, their codes.

The current PhysioNet release: one JPG per DICOM at
``files/p<NN>/p<subject_id>/s<study_id>/<dicom_id>.jpg``, a metadata table
(view position), an official split by patient, and CheXpert or NegBio labels
per *study*. Label values use the legacy dataset's four codes (`Finding`);
they are nullable because about 2,400 studies have no label row at all: their
images are kept with every label absent.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

from datathon_etl.datasets.mimic_cxr.schema import Finding
from datathon_etl.framework.schema import Dataset, UnknownCodeError, column

__all__ = ["DATASET", "Finding", "ImageKey", "Labels", "Split", "View"]


class View(enum.IntEnum):
    """The view, normalised from ``ViewPosition``: PA/AP, LATERAL/LL, other, blank."""

    FRONTAL = 0
    LATERAL = 1
    OTHER = 2
    UNKNOWN = 3

    @classmethod
    def from_source(cls, text: str) -> View:
        """PA/AP -> frontal, LATERAL/LL -> lateral, blank -> unknown, anything else -> other."""
        text = text.strip().upper()
        if not text:
            return cls.UNKNOWN
        return _VIEWS.get(text, cls.OTHER)


_VIEWS = {"PA": View.FRONTAL, "AP": View.FRONTAL, "LATERAL": View.LATERAL, "LL": View.LATERAL}


class Split(enum.IntEnum):
    """The official split (by patient) from ``mimic-cxr-2.0.0-split.csv.gz``."""

    TRAIN = 0
    VALIDATE = 1
    TEST = 2

    @classmethod
    def from_source(cls, text: str) -> Split:
        """Parses the split CSV's ``split`` cell: ``train``, ``validate`` or ``test``."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise UnknownCodeError(f"unknown split {text!r}") from None


_LABEL = (
    "A label extracted from the study's radiology report (the same for every image of the "
    "study); null when the study has no label row."
)


def _label(source: str) -> Any:
    return column(_LABEL, source=source)


@attrs.frozen
class ImageKey:
    """Identifies one image: its ids (in its path), its view and its split."""

    subject_id: int = column("Patient unique identifier (8 digits).")
    study_id: int = column("Imaging study unique identifier (8 digits).")
    dicom_id: str = column("The image's DICOM identifier; the JPG's file name.")
    view_position: str = column(
        "ViewPosition as given in the metadata table (PA, AP, LATERAL, LL, AP AXIAL, ...); "
        "empty when the metadata leaves it blank."
    )
    view: View = column("The view, normalised from view_position.")
    split: Split = column("The official split the image belongs to (by patient).")


@attrs.frozen
class Labels:
    """The 14 labels of the image's study, in the label CSVs' order."""

    atelectasis: Finding | None = _label("Atelectasis")
    cardiomegaly: Finding | None = _label("Cardiomegaly")
    consolidation: Finding | None = _label("Consolidation")
    edema: Finding | None = _label("Edema")
    enlarged_cardiomediastinum: Finding | None = _label("Enlarged Cardiomediastinum")
    fracture: Finding | None = _label("Fracture")
    lung_lesion: Finding | None = _label("Lung Lesion")
    lung_opacity: Finding | None = _label("Lung Opacity")
    no_finding: Finding | None = _label("No Finding")
    pleural_effusion: Finding | None = _label("Pleural Effusion")
    pleural_other: Finding | None = _label("Pleural Other")
    pneumonia: Finding | None = _label("Pneumonia")
    pneumothorax: Finding | None = _label("Pneumothorax")
    support_devices: Finding | None = _label("Support Devices")


DATASET = Dataset(
    name="mimic_cxr_jpg",
    description=(
        "MIMIC-CXR-JPG 2.0.0 / 2.1.0 chest radiographs as released on PhysioNet: JPGs under "
        "`files/p<NN>/p<subject_id>/s<study_id>/<dicom_id>.jpg`, the metadata table's view "
        "position, the official split by patient, and 14 CheXpert or NegBio labels per study "
        "(null for studies without a label row)."
    ),
    key=ImageKey,
    labels=Labels,
    split="split",
    patient="subject_id",
    study="study_id",
    view="view",
    image_feature="jpg_bytes",
    path_description=(
        "The relative path to the .jpg file: files/p<NN>/p<subject_id>/s<study_id>/<dicom_id>.jpg."
    ),
    layout="datathon_etl.datasets.mimic_cxr_jpg.parsing",
)
