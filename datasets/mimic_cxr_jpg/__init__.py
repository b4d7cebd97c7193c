"""MIMIC-CXR-JPG 2.0.0 / 2.1.0, the current PhysioNet release: labels per study."""

from datathon_etl.datasets.mimic_cxr_jpg.schema import DATASET

__all__ = ["DATASET"]
