"""Random schemas and instances round-trip through every generated artifact.

Each hypothesis example writes a random dataset module, runs codegen on it,
imports the generated modules and checks, for random instances:
instance -> tf.train.Example -> parsed with the generated spec -> instance,
and instance -> Arrow row (generated schema) -> instance.
"""

from __future__ import annotations

import importlib
import itertools
import keyword
import sys
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datathon_etl.codegen import render_all, write
from datathon_etl.framework.schema import (
    Dataset,
    SchemaError,
    UnsupportedTypeError,
    column,
    from_row,
    read_dataset,
)
from datathon_etl.framework.schema.example import Example

BASE_TYPES = ["int", "float", "str", "bytes", "bool", "Code"]
RESERVED = {"path", "image_bytes", "attrs", "enum", "column", "Dataset", "Code", "Key", "Labels"}

names = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True).filter(
    lambda n: not keyword.iskeyword(n) and n not in RESERVED and not n.startswith("_")
)
field_types = st.tuples(st.sampled_from(BASE_TYPES), st.booleans())  # (type, nullable)
schemas = st.lists(
    st.tuples(names, field_types), min_size=2, max_size=10, unique_by=lambda f: f[0]
).flatmap(lambda fields: st.tuples(st.just(fields), st.integers(1, len(fields) - 1)))

VALUES: dict[str, st.SearchStrategy[Any]] = {
    "int": st.integers(-(2**63), 2**63 - 1),
    # tf.train.Example stores floats as float32.
    "float": st.floats(width=32, allow_nan=False),
    "str": st.text(st.characters(exclude_categories=["Cs"]), max_size=20),
    "bytes": st.binary(max_size=20),
    "bool": st.booleans(),
}

_OUT = Path(tempfile.mkdtemp(prefix="roundtrip-"))
_COUNTER = itertools.count()
sys.path.insert(0, str(_OUT))


def _module_source(name: str, fields: list[tuple[str, tuple[str, bool]]], split: int) -> str:
    def declare(fs: list[tuple[str, tuple[str, bool]]]) -> str:
        return "\n".join(
            f"    {n}: {t}{' | None' if nullable else ''} = column('{n} column.')"
            for n, (t, nullable) in fs
        )

    return f"""
from __future__ import annotations
import enum
import attrs
from datathon_etl.framework.schema import Dataset, column

class Code(enum.IntEnum):
    A = 0
    B = 1
    Z = 7

@attrs.frozen
class Key:
{declare(fields[:split])}

@attrs.frozen
class Labels:
{declare(fields[split:])}

DATASET = Dataset(name="{name}", description="random", key=Key, labels=Labels,
                  image_feature="image_bytes")
"""


def _instances(module: Any, fields: list[tuple[str, tuple[str, bool]]], split: int) -> Any:
    def strategy(fs: list[tuple[str, tuple[str, bool]]], cls: type) -> Any:
        kwargs = {}
        for n, (t, nullable) in fs:
            base = st.sampled_from(module.Code) if t == "Code" else VALUES[t]
            kwargs[n] = st.none() | base if nullable else base
        return st.builds(cls, **kwargs)

    return st.builds(
        Example,
        image=st.binary(max_size=64),
        path=VALUES["str"],
        key=strategy(fields[:split], module.Key),
        labels=strategy(fields[split:], module.Labels),
    )


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schemas, st.data())
def test_random_schemas_round_trip(schema, data):
    """TFRecord (both decoders) and Arrow rows give back the same instances."""
    fields, split = schema
    name = f"random_{next(_COUNTER)}"
    (_OUT / f"{name}_schema.py").write_text(_module_source(name, fields, split))
    module = importlib.import_module(f"{name}_schema")
    write(render_all([f"{name}_schema"]), _OUT)
    features = importlib.import_module(f"{name}.features")
    arrow_schema = importlib.import_module(f"{name}.arrow_schema")
    rows = importlib.import_module(f"{name}.rows")

    for example in data.draw(st.lists(_instances(module, fields, split), min_size=1, max_size=4)):
        serialized = features.encode(example)
        assert features.decode(serialized) == example
        parsed = tf.io.parse_single_example(serialized, features.feature_dict())
        assert features.from_parsed(parsed) == example

        row = rows.labels_row(example)
        table = pa.Table.from_pylist([row], schema=arrow_schema.LABELS)
        assert table.schema.names == list(row)
        (back,) = table.to_pylist()
        assert from_row(module.Key, back) == example.key
        assert from_row(module.Labels, back) == example.labels


def test_prediction_row_refuses_a_width_mismatch():
    """A model output with the wrong number of values is an error, not a truncation."""
    from datathon_etl.generated.mimic_cxr import rows

    ids = dict.fromkeys(rows.ID_COLUMNS, 1)
    assert list(rows.prediction_row(ids, [0.5] * 14))[-1] == "support_devices"
    for width in (13, 15):
        with pytest.raises(
            ValueError, match=f"outputs {width} values per image, but the dataset has 14"
        ):
            rows.prediction_row(ids, [0.0] * width)


@pytest.mark.parametrize(
    "annotation",
    ["list[int]", "int | str", "Colour"],  # Colour is a plain Enum, not an IntEnum
)
def test_unsupported_types_are_refused(annotation, tmp_path, monkeypatch):
    """Types outside the type table raise a SchemaError naming the field."""
    source = f"""
from __future__ import annotations
import enum
import attrs
from datathon_etl.framework.schema import column

class Colour(enum.Enum):
    RED = "red"

@attrs.frozen
class Key:
    bad: {annotation} = column("bad")
"""
    (tmp_path / "bad_types.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("bad_types", None)
    module = importlib.import_module("bad_types")
    dataset = Dataset(name="bad", description="", key=module.Key, labels=module.Key)
    with pytest.raises(SchemaError, match=r"bad: Key\.bad") as error:
        read_dataset(dataset, "bad_types")
    assert isinstance(error.value.__cause__, UnsupportedTypeError)


def test_missing_description_and_name_collisions_are_refused():
    """Every column needs a description; names must be unique across the table."""
    import attrs

    @attrs.frozen
    class NoDescription:
        x: int = attrs.field()

    @attrs.frozen
    class A:
        x: int = column("x")

    with pytest.raises(SchemaError, match="declare it with column"):
        read_dataset(Dataset("d", "", NoDescription, A), "m")
    with pytest.raises(SchemaError, match="column names used twice: x"):
        read_dataset(Dataset("d", "", A, A), "m")
