"""MIMIC-CXR in the legacy layout read by the original pipelines."""

from datathon_etl.datasets.mimic_cxr.schema import DATASET

__all__ = ["DATASET"]
