"""TFRecord encoding and reading shared by generated feature specs."""

from datathon_etl.framework.tfrecords.dataset import load_dataset
from datathon_etl.framework.tfrecords.features import (
    FeatureSpec,
    read_features,
    write_features,
)

__all__ = ["FeatureSpec", "load_dataset", "read_features", "write_features"]
