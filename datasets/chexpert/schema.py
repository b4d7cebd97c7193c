"""CheXpert v1.0 (and -small): 224,316 chest X-rays, 14 labels in CheXpert's codes.

``train.csv`` and ``valid.csv`` name each image by ``Path``
(``CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg``), then
give ``Sex``, ``Age``, ``Frontal/Lateral``, ``AP/PA`` and the 14 labels
(blank, ``1.0``, ``0.0``, ``-1.0``: the codes MIMIC-CXR uses, so the same
`Finding`). The key, view (frontal or lateral) and split included, is in the
path; sex, age and the AP/PA projection are metadata.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

from datathon_etl.datasets.mimic_cxr.schema import Finding
from datathon_etl.framework.schema import Dataset, UnknownCodeError, column

__all__ = ["DATASET", "Finding", "ImageKey", "Labels", "Projection", "Sex", "Split", "View"]


class Split(enum.IntEnum):
    """The release's split: ``train`` or ``valid`` (the path's first folder)."""

    TRAIN = 0
    VALID = 1


class View(enum.IntEnum):
    """Frontal or lateral (the path's ``view<N>_<view>.jpg``, the CSV's ``Frontal/Lateral``)."""

    FRONTAL = 0
    LATERAL = 1


class Sex(enum.IntEnum):
    """``Sex``: Male, Female or Unknown."""

    MALE = 0
    FEMALE = 1
    UNKNOWN = 2

    @classmethod
    def from_source(cls, text: str) -> Sex:
        """Parses ``Male``, ``Female`` or ``Unknown``."""
        try:
            return cls[text.upper()]
        except KeyError:
            raise UnknownCodeError(f"unknown sex {text!r} (Male, Female or Unknown)") from None


class Projection(enum.IntEnum):
    """``AP/PA``: AP, PA, LL or RL (blank for lateral images)."""

    AP = 0
    PA = 1
    LL = 2
    RL = 3

    @classmethod
    def from_source(cls, text: str) -> Projection:
        """Parses ``AP``, ``PA``, ``LL`` or ``RL``."""
        try:
            return cls[text]
        except KeyError:
            raise UnknownCodeError(f"unknown projection {text!r} (AP, PA, LL or RL)") from None


@attrs.frozen
class ImageKey:
    """Identifies one image; every field is in its path."""

    patient: int = column("Patient identifier (the path's patient<5 digits>).")
    study: int = column("The patient's study number (study<N>).")
    image: int = column("The image's number in its study (view<N>).")
    view: View = column("Frontal or lateral.")
    split: Split = column("The release's split.")


def _label(source: str) -> Any:
    return column(f"CheXpert labeler's {source} (blank, 1.0, 0.0, -1.0).", source=source)


@attrs.frozen
class Labels:
    """Sex, age and projection (metadata), then the 14 labels in the CSV's order (targets)."""

    sex: Sex = column("The patient's sex.", source="Sex", target=False)
    age: int = column("The patient's age in years.", source="Age", target=False)
    projection: Projection | None = column(
        "AP or PA (LL, RL) for frontal images; absent for most lateral ones.",
        source="AP/PA",
        target=False,
    )
    no_finding: Finding = _label("No Finding")
    enlarged_cardiomediastinum: Finding = _label("Enlarged Cardiomediastinum")
    cardiomegaly: Finding = _label("Cardiomegaly")
    lung_opacity: Finding = _label("Lung Opacity")
    lung_lesion: Finding = _label("Lung Lesion")
    edema: Finding = _label("Edema")
    consolidation: Finding = _label("Consolidation")
    pneumonia: Finding = _label("Pneumonia")
    atelectasis: Finding = _label("Atelectasis")
    pneumothorax: Finding = _label("Pneumothorax")
    pleural_effusion: Finding = _label("Pleural Effusion")
    pleural_other: Finding = _label("Pleural Other")
    fracture: Finding = _label("Fracture")
    support_devices: Finding = _label("Support Devices")


DATASET = Dataset(
    name="chexpert",
    description=(
        "CheXpert v1.0 (Irvin et al., AAAI 2019) chest X-rays of Stanford Hospital: "
        "`{train,valid}/patient<5 digits>/study<N>/view<N>_{frontal,lateral}.jpg` under "
        "`CheXpert-v1.0[-small]/`, and `train.csv` / `valid.csv` of 14 labels in CheXpert's "
        "codes with sex, age and projection."
    ),
    key=ImageKey,
    labels=Labels,
    path_description="The image's path less the release folder (`train/patient00001/...`).",
    path_source="Path",
    layout="datathon_etl.datasets.chexpert.layout",
    split="split",
    patient="patient",
    study="study",
    view="view",
)
