"""CheXpert v1.0 (and -small): the declaration (`schema`) and the layout functions (`layout`)."""

from datathon_etl.datasets.chexpert.schema import DATASET

__all__ = ["DATASET"]
