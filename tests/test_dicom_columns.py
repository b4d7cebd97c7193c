"""Declared DICOM header columns: read from real files, typed by the type table, checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pydicom
import pytest

from datathon_etl.datasets.mimic_cxr_jpg.schema import Split, View
from datathon_etl.framework.images import ImageError, ImageSpec, transform_and_read
from datathon_etl.framework.ingest.dicom_columns import DicomColumns
from datathon_etl.framework.ingest.label_rows import DeclaredLabelRows
from datathon_etl.framework.quarantine import Reason
from datathon_etl.framework.schema import Dataset, SchemaError, column, read_dataset

DICOM = Path(__file__).parent / "data" / "dicom"
SPEC = ImageSpec(32, 32)


@attrs.frozen
class Key:
    path: str = column("The path.")
    view: View = column("The view.", dicom="ViewPosition", default=View.UNKNOWN)


@attrs.frozen
class Labels:
    finding: bool = column("A target.")
    rows: int = column("Rows.", dicom="Rows", default=0, target=False)
    sex: str | None = column("Sex.", dicom="PatientSex", default=None, target=False)
    spacing: str | None = column("Spacing.", dicom="PixelSpacing", default=None, target=False)
    maker: str = column("Manufacturer.", dicom="Manufacturer", default="", target=False)


def _fill(file: str | Path, key: Any = Key("p"), labels: Any = Labels(True)) -> tuple[Any, Any]:
    columns = DicomColumns.of(type(key), type(labels))
    assert columns is not None
    texts = transform_and_read((DICOM / file).read_bytes(), SPEC, columns.keywords).attributes
    return columns.fill(key, labels, texts)


@pytest.mark.parametrize(
    "file", ["RG1_UNCR_quarter.dcm", "RG3_J2KI.dcm", "nih_chestxray14_dx.dcm", "CT_small.dcm"]
)
def test_declared_attributes_are_the_files_own_values(file):
    """Each column holds its attribute as pydicom reads it; absent or blank is null or blank."""
    header = pydicom.dcmread(DICOM / file, stop_before_pixels=True)
    key, labels = _fill(file)
    assert key == Key("p", View.from_source(header.get("ViewPosition", "")))
    spacing = header.get("PixelSpacing")
    assert labels == Labels(
        True,
        rows=header.Rows,
        sex=header.get("PatientSex") or None,
        spacing="\\".join(map(str, spacing)) if spacing else None,
        maker=header.get("Manufacturer") or "",
    )


@attrs.frozen
class Age:
    age: int = column("Age in years.", dicom="PatientAge", default=0)


@attrs.frozen
class Size:
    size: float = column("Height in m.", dicom="PatientSize", default=0.0)


@attrs.frozen
class Spacing:
    spacing: float = column("One spacing.", dicom="PixelSpacing", default=0.0)


@attrs.frozen
class SpacingValues:
    row: float = column("Row spacing.", dicom="PixelSpacing", dicom_value=0, default=0.0)
    column: float | None = column(
        "Column spacing.", dicom="PixelSpacing", dicom_value=1, default=None
    )


@attrs.frozen
class SecondWindow:
    second: float = column("A second window.", dicom="WindowCenter", dicom_value=1, default=0.0)


@attrs.frozen
class SplitFromView:
    split: Split = column("Not a view.", dicom="ViewPosition", default=Split.TRAIN)


@pytest.mark.parametrize(
    ("file", "labels", "reason"),
    [
        ("RG1_UNCR_quarter.dcm", Age(), Reason.MISSING_DICOM_ATTRIBUTE),  # absent
        ("MR_small_RLE.dcm", Size(), Reason.MISSING_DICOM_ATTRIBUTE),  # present, empty
        ("CT_small.dcm", Age(), Reason.BAD_DICOM_ATTRIBUTE),  # "000Y" is no int
        ("CT_small.dcm", Spacing(), Reason.BAD_DICOM_ATTRIBUTE),  # two values, one float
        ("RG1_UNCR_quarter.dcm", SplitFromView(), Reason.UNKNOWN_CODE),  # "PA" is no split
    ],
    ids=["absent", "empty", "not-an-int", "several-values", "unknown-code"],
)
def test_a_value_that_does_not_fit_its_column_refuses_the_image(file, labels, reason):
    with pytest.raises(ImageError) as error:
        _fill(file, labels=labels)
    assert error.value.reason is reason
    assert type(labels).__name__ != "Age" or "PatientAge" in error.value.detail


def test_one_value_of_a_multi_valued_attribute_is_a_number_column(tmp_path):
    """``dicom_value=`` picks one of PixelSpacing's values, typed as a float."""
    header = pydicom.dcmread(DICOM / "CT_small.dcm")
    header.PixelSpacing = ["0.5", "0.25"]
    header.save_as(tmp_path / "spacing.dcm")
    assert _fill(tmp_path / "spacing.dcm", labels=SpacingValues())[1] == SpacingValues(0.5, 0.25)


def test_a_value_the_file_does_not_have_is_blank():
    """A file with fewer values than the declared one: as an absent attribute."""
    with pytest.raises(ImageError) as error:
        _fill("RG1_UNCR_quarter.dcm", labels=SecondWindow())  # one WindowCenter
    assert error.value.reason is Reason.MISSING_DICOM_ATTRIBUTE
    assert "WindowCenter value 1 is absent" in error.value.detail


def test_a_data_set_with_header_columns_takes_dicom_only():
    data = (Path(__file__).parent / "data" / "images" / "00000001_000.png").read_bytes()
    assert transform_and_read(data, SPEC, ()).attributes == ()
    with pytest.raises(ImageError) as error:
        transform_and_read(data, SPEC, ("ViewPosition",))
    assert error.value.reason is Reason.WRONG_IMAGE_FORMAT


def test_label_rows_read_as_declared_leave_header_fields_to_the_header():
    """A CSV column named like a header field is not read (it would refuse this row)."""
    parse = DeclaredLabelRows("t", "path", Key, Key, Labels)
    row = {"path": "a.dcm", "finding": "true", "rows": "not a number", "sex": "X"}
    assert parse(row, "t.csv:line 2") == (Key("a.dcm"), Labels(True))


def test_no_declared_attribute_no_columns():
    assert DicomColumns.of(Key, Labels) is not None
    assert DicomColumns.of(Age, Age) is not None
    assert DicomColumns.of(type("Plain", (), {}), None) is None


def _declare(**field: Any) -> Dataset:
    labels = attrs.make_class("Bad", {"finding": column("A target."), "bad": field["bad"]})
    labels.__annotations__ = {"finding": bool, "bad": field["type"]}
    return Dataset(name="bad", description="Bad.", key=Key, labels=labels)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (column("x", dicom="NoSuchAttribute", default=""), "not a DICOM attribute keyword"),
        (column("x", dicom="ViewCodeSequence", default=""), "SQ values"),
        (column("x", dicom="ViewPosition"), "needs a default="),
        (column("x", dicom="ViewPosition", source="View", default=""), "not both"),
        (column("x", dicom="PixelSpacing", dicom_value=2, default=""), "at most 2 value"),
        (column("x", dicom="PixelSpacing", dicom_value=-1, default=""), "not a value's index"),
        (column("x", dicom_value=0, default=""), "goes with dicom="),
    ],
    ids=["unknown", "sequence", "no-default", "source-too", "value-3-of-2", "negative", "no-dicom"],
)
def test_declarations_codegen_refuses(bad, message):
    with pytest.raises(SchemaError, match=message):
        read_dataset(_declare(bad=bad, type=str), "tests")
