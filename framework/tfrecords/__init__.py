"""TFRecord encoding and reading shared by generated feature specs."""

from datathon_etl.framework.tfrecords.features import (
    FeatureSpec,
    read_features,
    write_features,
)

__all__ = ["FeatureSpec", "read_features", "write_features"]
