"""TFRecord features of mimic_cxr (``dataset.json``), see `ExampleFeatures`: generated; DO NOT EDIT."""

from __future__ import annotations

from datathon_etl.framework.schema.package import load_package

FEATURES = load_package(__package__).features
IMAGE_FEATURE, SPECS, encode = FEATURES.image_feature, FEATURES.specs, FEATURES.encode
decode, from_parsed, from_flat = FEATURES.decode, FEATURES.from_parsed, FEATURES.from_flat
load_dataset, feature_dict = FEATURES.load_dataset, FEATURES.feature_dict
