"""TFRecord encoding and reading shared by generated feature specs.

Writing needs no TensorFlow; `datathon_etl.framework.tfrecords.dataset`
(reading back with `tf.data`) imports it, so it is not imported here.
"""

from datathon_etl.framework.tfrecords.features import (
    FeatureSpec,
    read_features,
    write_features,
)

__all__ = ["FeatureSpec", "read_features", "write_features"]
