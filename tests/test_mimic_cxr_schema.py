"""MIMIC-CXR's declaration: seed compatibility, path round-trip, CSV row parsing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datathon_etl.codegen import bigquery_schema, load_dataset_ir
from datathon_etl.datasets.mimic_cxr.parsing import (
    PathError,
    format_path,
    parse_label_row,
    parse_path,
)
from datathon_etl.datasets.mimic_cxr.schema import Finding, ImageKey, Labels, Split, View
from datathon_etl.framework.schema import SourceRowError

SEED = Path(__file__).parent / "data" / "seed"
IR = load_dataset_ir("datathon_etl.datasets.mimic_cxr")
CSV_LABELS = [c.source or c.name for c in IR.labels.columns]


@pytest.mark.parametrize(
    ("seed_file", "table"),
    [
        ("mimic_cxr_bigquery_labels_schema.json", IR.labels_table),
        ("mimic_cxr_bigquery_predictions_schema.json", IR.predictions_table),
    ],
)
def test_generated_schema_is_column_compatible_with_the_seed(seed_file, table):
    """Same names, order and BigQuery types as the original's published schema."""
    seed = json.loads((SEED / seed_file).read_text())["fields"]
    ours = bigquery_schema(table)["fields"]
    assert [(f["name"], f["type"]) for f in ours] == [(f["name"], f["type"]) for f in seed]


def test_codes_match_the_seed_descriptions():
    """Integer codes for views, splits and labels are the original's."""
    seed = {
        f["name"]: f["description"]
        for f in json.loads((SEED / "mimic_cxr_bigquery_labels_schema.json").read_text())["fields"]
    }
    assert "{0: frontal, 1: lateral, 2: other}" in seed["view"]
    assert [(v.value, v.name.lower()) for v in View] == [
        (0, "frontal"),
        (1, "lateral"),
        (2, "other"),
    ]
    assert "{0: not mentioned, 1: negative, 2: uncertain, 3: positive}" in seed["edema"]
    assert [(f.value, f.name.lower().replace("_", " ")) for f in Finding] == [
        (0, "not mentioned"),
        (1, "negative"),
        (2, "uncertain"),
        (3, "positive"),
    ]
    assert seed["dataset"].endswith("{0: train, 1: validation}")
    assert [(s.value, s.name.lower()) for s in Split] == [(0, "train"), (1, "valid")]


def test_prediction_description_has_the_correct_logistic_formula():
    """The seed's formula is missing a parenthesis; ours is the logistic function."""
    description = bigquery_schema(IR.predictions_table)["fields"][-1]["description"]
    assert "`0.5 * (TANH(0.5 * x) + 1)`" in description


keys = st.builds(
    ImageKey,
    patient=st.integers(0, 10**9),
    study=st.integers(0, 10**6),
    image=st.integers(0, 1000),
    view=st.sampled_from(View),
    dataset=st.sampled_from(Split),
)


@given(keys)
def test_path_round_trips(key):
    """Formatting then parsing gives the key back, and the path formats back identically."""
    path = format_path(key)
    assert parse_path(path) == key
    assert format_path(parse_path(path)) == path


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "train/p10000032/s01/view1_frontal.jpg",
            ImageKey(10000032, 1, 1, View.FRONTAL, Split.TRAIN),
        ),
        ("valid/p7/s123/view3_other.jpg", ImageKey(7, 123, 3, View.OTHER, Split.VALID)),
        ("mimic-cxr/train/p1/s10/view2_lateral.jpg", ImageKey(1, 10, 2, View.LATERAL, Split.TRAIN)),
        ("train/p1/s1/view1_frontal.jpg", PathError),  # s1 would format as s01
        ("train/p01/s01/view1_frontal.jpg", PathError),
        ("test/p1/s01/view1_frontal.jpg", PathError),
        ("train/p1/s01/view1_frontal.png", PathError),
        ("train/p1/s01/view1_axial.jpg", PathError),
        ("train/p1/s01/view1_frontal.jpg.bak", PathError),
        ("", PathError),
    ],
)
def test_parse_path(path, expected):
    """Legacy paths parse to keys; anything that would not round-trip is refused."""
    if isinstance(expected, type):
        with pytest.raises(expected, match="mimic_cxr"):
            parse_path(path)
    else:
        assert parse_path(path) == expected


def _row(**cells: str) -> dict[str, str]:
    row = {"path": "train/p10/s01/view1_frontal.jpg", "view": "frontal"}
    row.update(dict.fromkeys(CSV_LABELS, ""))
    row.update(cells)
    return row


def test_label_row_parses_every_code():
    """Blank, 0.0, -1.0 and 1.0 map to the original's four integer codes."""
    key, labels = parse_label_row(
        _row(**{"No Finding": "1.0", "Edema": "-1.0", "Fracture": "0.0", "Cardiomegaly": ""}),
        "train.csv.gz:row 2",
    )
    assert key == ImageKey(10, 1, 1, View.FRONTAL, Split.TRAIN)
    assert labels.no_finding is Finding.POSITIVE
    assert labels.edema is Finding.UNCERTAIN
    assert labels.fracture is Finding.NEGATIVE
    assert labels.cardiomegaly is Finding.NOT_MENTIONED
    assert labels == Labels(**{c.name: getattr(labels, c.name) for c in IR.labels.columns})


@pytest.mark.parametrize(
    ("cells", "drop", "message"),
    [
        (
            {"Edema": "2.0"},
            None,
            "train.csv.gz:row 7: train/p10/s01/view1_frontal.jpg: "
            "Edema: unknown CheXpert code '2.0'",
        ),
        ({"Edema": "yes"}, None, "Edema: unknown CheXpert code 'yes'"),
        ({}, "Fracture", "Fracture: missing column"),
        ({"view": "lateral"}, None, "view: 'lateral' disagrees with the path"),
        ({"path": ""}, None, "path: missing or blank"),
    ],
)
def test_bad_label_rows_name_file_row_and_column(cells, drop, message):
    """Unknown codes, missing columns and contradictions raise with the location."""
    row = _row(**cells)
    if drop:
        del row[drop]
    with pytest.raises(SourceRowError) as error:
        parse_label_row(row, "train.csv.gz:row 7")
    assert message in str(error.value)
    assert str(error.value).startswith("mimic_cxr: train.csv.gz:row 7")


cells = st.one_of(
    st.sampled_from(["", "1.0", "0.0", "-1.0", "1", "-1", "2.0", "nan", "inf", " 1.0 "]),
    st.text(max_size=8),
)


@given(
    st.dictionaries(st.sampled_from(["path", "view", *CSV_LABELS]), cells | st.none()),
    st.one_of(st.text(max_size=40), st.builds(format_path, keys)),
)
def test_label_row_parsing_fails_only_with_its_own_errors(row, path):
    """Any row parses, or raises SourceRowError/PathError with the location; nothing else."""
    row = {**row, "path": path}
    try:
        key, labels = parse_label_row(row, "x.csv:line 2")
    except (SourceRowError, PathError) as error:
        assert str(error).startswith("mimic_cxr: ")  # noqa: PT017
    else:
        assert format_path(key) == path
        assert isinstance(labels, Labels)


@given(st.text(max_size=60))
def test_path_parsing_fails_only_with_path_error(path):
    """Random text parses to a key that formats back, or raises PathError."""
    try:
        key = parse_path(path)
    except PathError:
        return
    assert path.endswith(format_path(key))
