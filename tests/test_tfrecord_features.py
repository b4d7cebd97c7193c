"""Example records are written without TensorFlow, byte for byte as TensorFlow writes them."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st

from datathon_etl.framework.tfrecords import FeatureSpec, read_features, write_features

KINDS: dict[str, tuple[FeatureSpec, st.SearchStrategy[Any]]] = {
    "bytes": (FeatureSpec("", "bytes_list"), st.binary(max_size=40)),
    "text": (
        FeatureSpec("", "bytes_list", text=True),
        st.text(st.characters(exclude_categories=["Cs"]), max_size=20),
    ),
    "int": (FeatureSpec("", "int64_list"), st.integers(-(2**63), 2**63 - 1)),
    "bool": (FeatureSpec("", "int64_list", boolean=True), st.booleans()),
    "float": (FeatureSpec("", "float_list"), st.floats(width=32, allow_nan=False)),
}


@st.composite
def rows(draw: st.DrawFn) -> tuple[dict[str, Any], tuple[FeatureSpec, ...]]:
    names = draw(st.lists(st.text(min_size=1, max_size=8), max_size=10, unique=True))
    row: dict[str, Any] = {}
    specs = []
    for name in names:
        template, values = KINDS[draw(st.sampled_from(sorted(KINDS)))]
        nullable = draw(st.booleans())
        specs.append(FeatureSpec(name, template.kind, template.text, template.boolean, nullable))
        row[name] = draw(st.none() | values) if nullable else draw(values)
    return row, tuple(specs)


def _tensorflow_bytes(row: dict[str, Any], specs: tuple[FeatureSpec, ...]) -> bytes:
    """What `tf.train.Example` writes for the row (the reference)."""
    features = {}
    for spec in specs:
        value = row[spec.name]
        values = [] if value is None else [value.encode() if spec.text else value]
        if spec.kind == "bytes_list":
            feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
        elif spec.kind == "int64_list":
            feature = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
        else:
            feature = tf.train.Feature(float_list=tf.train.FloatList(value=values))
        features[spec.name] = feature
    example = tf.train.Example(features=tf.train.Features(feature=features))
    serialized: bytes = example.SerializeToString(deterministic=True)
    return serialized


@given(rows())
def test_bytes_match_tensorflow_and_read_back(case):
    """Same bytes as TensorFlow's deterministic serialization; both decoders agree."""
    row, specs = case
    serialized = write_features(row, specs)
    assert serialized == _tensorflow_bytes(row, specs)
    assert read_features(serialized, specs) == row
    parsed = tf.train.Example.FromString(serialized).features.feature
    assert sorted(parsed) == sorted(row)


def test_none_for_a_required_feature_names_it():
    """A missing required value is an error naming the feature, not an empty list."""
    with pytest.raises(ValueError, match="feature 'study': value is None"):
        write_features({"study": None}, (FeatureSpec("study", "int64_list"),))


ENTRY_POINTS = [
    "datathon_etl.generated.mimic_cxr.ingest",
    "datathon_etl.generated.mimic_cxr_jpg.ingest",
    "datathon_etl.framework.pipelines.images_to_tfrecord",
    "datathon_etl.framework.pipelines.untar",
    "datathon_etl.framework.pipelines.decompress",
    "datathon_etl.codegen",
]


def test_ingestion_never_imports_tensorflow():
    """TensorFlow costs seconds and 0.5 GB per worker: writing records must not import it.

    Imported later in the same process, TensorFlow still reads the records.
    """
    script = f"""
import importlib, sys
for name in {ENTRY_POINTS!r}:
    importlib.import_module(name)
    assert "tensorflow" not in sys.modules, name
from datathon_etl.framework.tfrecords import FeatureSpec, write_features
record = write_features({{"study": 7}}, (FeatureSpec("study", "int64_list"),))
import tensorflow as tf
print(tf.train.Example.FromString(record).features.feature["study"].int64_list.value[0])
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["7"]
