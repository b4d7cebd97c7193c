"""The layout contract: a layout module is held to its protocol when codegen runs."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import attrs
import pytest

from datathon_etl.codegen.generate import load_dataset_ir
from datathon_etl.datasets import BUILTIN
from datathon_etl.datasets.nih_cxr14.schema import DATASET as NIH
from datathon_etl.framework.schema import read_dataset
from datathon_etl.framework.schema.layout import GroupLayout, Layout, RowParser, check_layout

GOOD = """
PARTITIONS = ("train_val", "test")

def parse_path(path):
    return path

def format_path(key):
    return key

def partition(key):
    return "test"
"""


TABLED = (
    GOOD
    + "from datathon_etl.framework.ingest.spec import ImageTable\n"
    + "def row_key(row):\n    return ''\ndef image_key(key, value):\n    return key\n"
)


@pytest.fixture
def layout_module() -> Iterator[types.ModuleType]:
    """A scratch layout module, importable as ``scratch_layout`` while the test runs."""
    module = types.ModuleType("scratch_layout")
    sys.modules["scratch_layout"] = module
    yield module
    del sys.modules["scratch_layout"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (GOOD.replace("def partition", "def _partition"), "the layout module lacks partition"),
        (
            GOOD.replace("def format_path(key)", "def format_path(key, style)"),
            "format_path must take (key) (see Layout)",
        ),
        (
            GOOD + "def parse_label_row(row):\n    return row\n",
            "parse_label_row must take (row, where) (see RowParser)",
        ),
        (GOOD.replace('("train_val", "test")', '"train_val"'), "PARTITIONS must be a non-empty"),
        (GOOD.replace('("train_val", "test")', "()"), "PARTITIONS must be a non-empty tuple"),
        (GOOD + "LABELS_PER = 'Patient id'\n", "LABELS_PER must be 'image' or a group's name"),
        (GOOD + "LABELS_PER = ('study',)\n", "LABELS_PER must be 'image' or a group's name"),
        (
            GOOD + "LABELS_PER = 'patient'\n",
            "lacks image_key, row_key, group_of, "
            "TABLES, LABEL_KEY_COLUMNS, LABEL_SOURCES, NO_LABELS, ImagePath",
        ),
        (GOOD + "TABLES = ()\n", "the layout module lacks image_key, row_key"),
        (TABLED + "TABLES = ['split']\n", "TABLES must be a tuple of ImageTable"),
        (TABLED + "TABLES = 3\n", "TABLES must be a tuple of ImageTable"),
        (TABLED + "TABLES = ('split',)\n", "TABLES must be a tuple of ImageTable, not 'split'"),
        (
            TABLED + "TABLES = (ImageTable('split', ('a',), None, None),)\n",
            "table 'split' has no parse_row and no attrs row class (see ImageTable.declared)",
        ),
        (
            TABLED + "TABLES = (ImageTable('s', (), max, None), ImageTable('s', (), max, None))\n",
            "two tables are named 's'",
        ),
        (
            GOOD + "TABLES = ()\ndef row_key(row):\n    return ''\n"
            "def image_key(key, view):\n    return key\n",
            "image_key must take (key) (see TablesLayout)",
        ),
    ],
)
def test_a_layout_that_breaks_its_protocol_is_named_in_one_line(
    layout_module: types.ModuleType, source: str, message: str
) -> None:
    exec(compile(source, "scratch_layout.py", "exec"), vars(layout_module))
    ir = attrs.evolve(read_dataset(NIH, "scratch"), layout="scratch_layout")
    with pytest.raises(ValueError, match=r"^scratch_layout: ") as raised:
        check_layout(ir)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_split_lists_are_refused_for_labels_per_group(layout_module: types.ModuleType) -> None:
    import datathon_etl.datasets.mimic_cxr_jpg.parsing as study

    # Its names, not its identity (``__name__``...): the real module stays as imported.
    vars(layout_module).update({k: v for k, v in vars(study).items() if not k.startswith("__")})
    ir = attrs.evolve(read_dataset(NIH, "scratch"), layout="scratch_layout")
    with pytest.raises(ValueError, match="split_lists are for labels per image, not per study"):
        check_layout(ir)


@pytest.mark.parametrize(
    ("module", "protocol"),
    [
        ("datathon_etl.datasets.mimic_cxr", RowParser),
        ("datathon_etl.datasets.mimic_cxr_jpg", GroupLayout),
        ("datathon_etl.datasets.mimic_cxr_dicom", GroupLayout),
        ("datathon_etl.datasets.nih_cxr14", Layout),
        ("datathon_etl.datasets.chexpert", Layout),
    ],
)
def test_each_built_in_layout_follows_its_protocol(module: str, protocol: type) -> None:
    assert module in BUILTIN
    assert check_layout(load_dataset_ir(module)).protocol is protocol


def test_image_key_takes_one_value_per_table(layout_module: types.ModuleType) -> None:
    import datathon_etl.datasets.mimic_cxr_dicom.parsing as study

    vars(layout_module).update({k: v for k, v in vars(study).items() if not k.startswith("__")})
    ir = attrs.evolve(read_dataset(NIH, "scratch"), layout="scratch_layout", split_lists=())
    check_layout(ir)  # one table (split): image_key(key, split)
    vars(layout_module)["image_key"] = lambda path, view, split: None
    with pytest.raises(ValueError, match=r"image_key must take \(key, values\[0\]\)"):
        check_layout(ir)
