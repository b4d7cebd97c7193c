"""NIH ChestX-ray14: the declaration (`schema`) and the layout functions (`layout`)."""

from datathon_etl.datasets.nih_cxr14.schema import DATASET

__all__ = ["DATASET"]
