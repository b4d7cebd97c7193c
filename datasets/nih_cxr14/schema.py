"""NIH ChestX-ray14: 112,120 frontal chest X-rays, 14 findings multi-hot, official split.

``Data_Entry_2017_v2020.csv`` names each image (``Image Index``) and lists its
findings in one pipe-separated column (``Finding Labels``), declared once
below: each finding is a ``bool`` target; ``No Finding``, age, sex, view and
follow-up number are metadata. The split comes from ``train_val_list.txt``
and ``test_list.txt``.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

from datathon_etl.framework.schema import Dataset, MultiValued, UnknownCodeError, column

FINDINGS = MultiValued("Finding Labels", separator="|")


class Split(enum.IntEnum):
    """The official split (by patient): training and validation, or test."""

    TRAIN_VAL = 0
    TEST = 1


class Sex(enum.IntEnum):
    """The patient's sex as recorded (``Patient Gender``: M or F)."""

    MALE = 0
    FEMALE = 1

    @classmethod
    def from_source(cls, text: str) -> Sex:
        """Parses ``M`` or ``F``."""
        if text not in ("M", "F"):
            raise UnknownCodeError(f"unknown sex {text!r} (M or F)")
        return cls.MALE if text == "M" else cls.FEMALE


class View(enum.IntEnum):
    """The projection (``View Position``: PA or AP)."""

    PA = 0
    AP = 1

    @classmethod
    def from_source(cls, text: str) -> View:
        """Parses ``PA`` or ``AP``."""
        if text not in ("PA", "AP"):
            raise UnknownCodeError(f"unknown view position {text!r} (PA or AP)")
        return cls[text]


@attrs.frozen
class ImageKey:
    """Identifies one image: ``<patient 8 digits>_<index 3 digits>.png``."""

    patient: int = column("Patient unique identifier (the file name's first 8 digits).")
    index: int = column("The image's number among its patient's (the file name's last 3 digits).")
    split: Split = column(
        "The official split, from train_val_list.txt and test_list.txt.", default=Split.TRAIN_VAL
    )


def _finding(value: str) -> Any:
    return FINDINGS.flag(value, "A finding text-mined from the image's report.")


@attrs.frozen
class Labels:
    """The 14 findings (targets), then what the CSV says about the image (metadata)."""

    atelectasis: bool = _finding("Atelectasis")
    cardiomegaly: bool = _finding("Cardiomegaly")
    effusion: bool = _finding("Effusion")
    infiltration: bool = _finding("Infiltration")
    mass: bool = _finding("Mass")
    nodule: bool = _finding("Nodule")
    pneumonia: bool = _finding("Pneumonia")
    pneumothorax: bool = _finding("Pneumothorax")
    consolidation: bool = _finding("Consolidation")
    edema: bool = _finding("Edema")
    emphysema: bool = _finding("Emphysema")
    fibrosis: bool = _finding("Fibrosis")
    pleural_thickening: bool = _finding("Pleural_Thickening")
    hernia: bool = _finding("Hernia")
    no_finding: bool = FINDINGS.flag("No Finding", "Whether no finding was mined.", target=False)
    follow_up: int = column("The patient's visit number.", source="Follow-up #", target=False)
    age: int = column("The patient's age in years.", source="Patient Age", target=False)
    sex: Sex = column("The patient's sex.", source="Patient Gender", target=False)
    view: View = column("The projection.", source="View Position", target=False)


DATASET = Dataset(
    name="nih_cxr14",
    description=(
        "NIH ChestX-ray14 (Wang et al., CVPR 2017): 112,120 frontal chest X-rays "
        "(`images/<patient>_<index>.png`, 1024x1024 8-bit) of 30,805 patients, 14 findings "
        "text-mined from the reports, and the official patient-wise split."
    ),
    key=ImageKey,
    labels=Labels,
    image_feature="jpg_bytes",
    path_description="The image's file name (`Image Index`), e.g. `00000001_000.png`.",
    path_source="Image Index",
    layout="datathon_etl.datasets.nih_cxr14.layout",
    split="split",
    patient="patient",
    split_lists={"train_val_list.txt": Split.TRAIN_VAL, "test_list.txt": Split.TEST},
)
