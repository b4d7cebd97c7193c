"""Multi-valued source columns: one declaration, one ``bool`` label per value.

Rows are NIH ChestX-ray14's real ``Finding Labels`` cells
(``tests/data/labels/nih_sample_rows.csv``) and the ways such a cell can be
wrong; declarations are checked when read, before any code is generated.
"""

from __future__ import annotations

import csv
from pathlib import Path

import attrs
import pytest

from datathon_etl.codegen.render import describe
from datathon_etl.framework.schema import (
    Dataset,
    MultiValued,
    SchemaError,
    SourceRowError,
    column,
    parse_source_row,
    read_dataset,
)

FINDINGS = MultiValued("Finding Labels", separator="|")
SAMPLE = Path(__file__).parent / "data" / "labels" / "nih_sample_rows.csv"


@attrs.frozen
class _Labels:
    cardiomegaly: bool = FINDINGS.flag("Cardiomegaly", "Cardiomegaly seen.")
    emphysema: bool = FINDINGS.flag("Emphysema", "Emphysema seen.")
    effusion: bool = FINDINGS.flag("Effusion", "Effusion seen.")
    no_finding: bool = FINDINGS.flag("No Finding", "Nothing seen.", target=False)
    age: int = column("Age in years.", source="Patient Age", target=False)


@attrs.frozen
class _Key:
    case: int = column("Case number.")


def _row(findings: str | None) -> dict[str, str | None]:
    return {"Finding Labels": findings, "Patient Age": "58"}


@pytest.mark.parametrize(
    ("cell", "flagged"),
    [
        ("Cardiomegaly", {"cardiomegaly"}),
        ("Cardiomegaly|Emphysema", {"cardiomegaly", "emphysema"}),
        ("Emphysema | Cardiomegaly", {"cardiomegaly", "emphysema"}),
        ("No Finding", {"no_finding"}),
    ],
)
def test_a_cell_sets_the_flags_of_the_values_it_lists(cell: str, flagged: set[str]) -> None:
    labels = parse_source_row(_Labels, _row(cell), "t.csv:line 2")
    found = attrs.asdict(labels)
    assert found.pop("age") == 58
    assert {name for name, value in found.items() if value} == flagged


@pytest.mark.parametrize(
    ("cell", "problem", "unknown_code"),
    [
        ("Hernia", "unknown value 'Hernia' in 'Hernia'", True),
        ("Cardiomegaly|Pneumonia", "unknown value 'Pneumonia'", True),
        ("cardiomegaly", "unknown value 'cardiomegaly'", True),
        ("Cardiomegaly||Effusion", "an empty value in 'Cardiomegaly||Effusion'", False),
        ("Effusion|Effusion", "'Effusion' listed twice", False),
        ("", "blank", False),
        (None, "blank", False),
    ],
)
def test_a_cell_that_lists_what_was_not_declared_is_refused(
    cell: str | None, problem: str, unknown_code: bool
) -> None:
    with pytest.raises(SourceRowError) as raised:
        parse_source_row(_Labels, _row(cell), "t.csv:line 2")
    assert raised.value.column == "Finding Labels"
    assert problem in raised.value.problem
    assert raised.value.unknown_code is unknown_code


def test_a_row_without_the_column_is_refused() -> None:
    with pytest.raises(SourceRowError, match="Finding Labels: missing column"):
        parse_source_row(_Labels, {"Patient Age": "58"}, "t.csv:line 2")


def test_a_blank_cell_may_list_nothing() -> None:
    @attrs.frozen
    class Tags:
        wet: bool = MultiValued("Tags", ";", blank_is_none=True).flag("wet", "Wet.")

    assert parse_source_row(Tags, {"Tags": " "}, "t.csv:line 2") == Tags(wet=False)


def test_the_real_sample_rows_parse_as_declared() -> None:
    """Every real row of the sample whose findings are declared here parses; others refuse."""
    declared = {"Cardiomegaly", "Emphysema", "Effusion", "No Finding"}
    with SAMPLE.open(newline="") as f:
        rows = list(csv.DictReader(f))
    parsed = refused = 0
    for line, row in enumerate(rows, start=2):
        listed = set(str(row["Finding Labels"]).split("|"))
        if listed <= declared:
            labels = parse_source_row(_Labels, row, f"sample:line {line}")
            assert labels.cardiomegaly == ("Cardiomegaly" in listed)
            assert labels.no_finding == (listed == {"No Finding"})
            parsed += 1
        else:
            with pytest.raises(SourceRowError, match="unknown value"):
                parse_source_row(_Labels, row, f"sample:line {line}")
            refused += 1
    assert parsed > 50  # both kinds are in the sample
    assert refused > 50


def test_the_schema_describes_each_flag_and_reads_the_column_once() -> None:
    ir = read_dataset(Dataset(name="toy", description="A toy.", key=_Key, labels=_Labels), "t")
    cardiomegaly = ir.labels.columns[0]
    assert (cardiomegaly.source, cardiomegaly.flags, cardiomegaly.target) == (
        "Finding Labels",
        "Cardiomegaly",
        True,
    )
    assert describe(cardiomegaly) == (
        "Cardiomegaly seen. (true when 'Finding Labels' lists 'Cardiomegaly')"
    )
    assert [c.name for c in ir.targets] == ["cardiomegaly", "emphysema", "effusion"]


@attrs.frozen
class _NotBool:
    effusion: int = FINDINGS.flag("Effusion", "Effusion seen.")


@attrs.frozen
class _Twice:
    effusion: bool = FINDINGS.flag("Effusion", "Effusion seen.")
    fluid: bool = FINDINGS.flag("Effusion", "Fluid seen.")


@attrs.frozen
class _TwoSeparators:
    effusion: bool = FINDINGS.flag("Effusion", "Effusion seen.")
    mass: bool = MultiValued("Finding Labels", ",").flag("Mass", "Mass seen.")


@attrs.frozen
class _PlainReader:
    effusion: bool = FINDINGS.flag("Effusion", "Effusion seen.")
    findings: str = column("The findings as written.", source="Finding Labels")


@attrs.frozen
class _KeyFlag:
    case: bool = FINDINGS.flag("Effusion", "Effusion seen.")


@pytest.mark.parametrize(
    ("key", "labels", "message"),
    [
        (_Key, _NotBool, "_NotBool.effusion: a flag of a multi-valued column must be a bool"),
        (_Key, _Twice, "_Twice.fluid: 'Effusion' of 'Finding Labels' is flagged twice"),
        (_Key, _TwoSeparators, "_TwoSeparators.mass: 'Finding Labels' is declared multi-valued"),
        (_Key, _PlainReader, "_PlainReader.findings: 'Finding Labels' is multi-valued"),
        (_KeyFlag, _Labels, "_KeyFlag.case: a flag of a multi-valued column must be a bool label"),
    ],
)
def test_an_inconsistent_declaration_is_refused(key: type, labels: type, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        read_dataset(Dataset(name="toy", description="A toy.", key=key, labels=labels), "t")
