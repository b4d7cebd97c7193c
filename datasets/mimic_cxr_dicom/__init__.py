"""MIMIC-CXR 2.0.0 DICOM, the primary release: MIMIC-CXR-JPG's labels, the header's view."""

from datathon_etl.datasets.mimic_cxr_dicom.schema import DATASET

__all__ = ["DATASET"]
