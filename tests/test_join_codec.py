"""The join's packed records: bytes of plain tuples that rebuild the exact records."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest
from apache_beam.coders import coders

from datathon_etl.datasets.mimic_cxr.schema import Finding, ImageKey, Labels, Split, View
from datathon_etl.datasets.mimic_cxr_jpg.parsing import NO_LABELS, ImagePath
from datathon_etl.framework.archives import MemberRef
from datathon_etl.framework.images import Transformed
from datathon_etl.framework.ingest.compact import JoinCodec, Wheres, from_bytes
from datathon_etl.framework.ingest.join import ImageItem, Refused, RefusedRow, TableRow
from datathon_etl.framework.quarantine import Reason

KEY = ImageKey(10003156, 1, 2, View.LATERAL, Split.VALID)
LABELS = Labels(*[Finding.UNCERTAIN, Finding.NOT_MENTIONED] * 7)
CODEC = JoinCodec(ImageKey, ImageKey, Wheres(("/data/train.csv.gz",)))
LABEL_ROW = (ImageKey, Labels)  # a per-image label table's value: (key, labels)
ASSEMBLY = JoinCodec(ImagePath, ImageKey, Wheres(("meta.csv", "labels.csv")))
PLAIN = (type(None), bool, int, float, str, bytes, tuple)


def _plain(value: Any) -> bool:
    """Whether Beam's own coder writes ``value`` without pickling anything."""
    if isinstance(value, tuple):
        return all(_plain(v) for v in value)
    return type(value) in PLAIN


@pytest.mark.parametrize(
    "item",
    [
        ImageItem("a.tar#p/x.jpg", KEY, MemberRef("a.tar", "p/x.jpg", 1536, 3400)),
        ImageItem("file:///in/p/x.jpg", KEY, "file:///in/p/x.jpg"),
        ImageItem("a.tar.gz#p/x.jpg", KEY, Transformed(b"\xff\xd8resized", 2544, 3056)),
        ImageItem(
            "a.tar.gz#p/x.dcm", KEY, Transformed(b"\xff\xd8resized", 2544, 3056, ("PA", None, ""))
        ),
        ImageItem("a.tar.gz#p/x.jpg", KEY, Refused(Reason.TRUNCATED_IMAGE, "cut at 12%")),
    ],
    ids=["member", "file", "transformed", "transformed-with-attributes", "refused"],
)
def test_an_image_packs_to_plain_values_and_back(item: ImageItem[Any]) -> None:
    path, packed = CODEC.pack_image(("p/x.jpg", item))
    assert path == "p/x.jpg"
    assert isinstance(packed, bytes)
    assert _plain(from_bytes(packed)), from_bytes(packed)
    assert CODEC.unpack_image(packed) == item


def test_a_label_row_packs_to_plain_values_and_back() -> None:
    row = TableRow("/data/train.csv.gz:line 7", (KEY, LABELS))
    packed = CODEC.pack_row(row, LABEL_ROW)
    assert from_bytes(packed) == (0, (0, 7), ((10003156, 1, 2, 1, 1), (2, 0) * 7))
    unpacked = CODEC.unpack_row(packed, LABEL_ROW)
    assert unpacked == row
    assert isinstance(unpacked, TableRow)
    assert unpacked.value[0].view is View.LATERAL  # members, not bare ints


def test_absent_values_stay_absent() -> None:
    row = TableRow("w", NO_LABELS)  # MIMIC-CXR-JPG's labels may be null
    assert CODEC.unpack_row(CODEC.pack_row(row, type(NO_LABELS)), type(NO_LABELS)) == row


def test_plain_keys_and_labels_pass_through() -> None:
    row = TableRow("query row 1", ("x/1.png", {"findings": "Edema", "age": 61}))
    assert JoinCodec().unpack_row(JoinCodec().pack_row(row, None), None) == row


def test_the_packed_row_is_a_sixth_of_the_pickled_one() -> None:
    coder = coders.FastPrimitivesCoder()
    row = TableRow("/data/train.csv.gz:line 2", (KEY, LABELS))
    packed = ("train/p10003156/s01/view2_lateral.jpg", CODEC.pack_row(row, LABEL_ROW))
    pickled = ("train/p10003156/s01/view2_lateral.jpg", row)
    assert len(coder.encode(packed)) * 5 < len(coder.encode(pickled))


def _held_bytes(values: list[Any]) -> int:
    """Bytes allocated to hold ``values`` as a grouping holds them: decoded by Beam's coder."""
    coder = coders.FastPrimitivesCoder()
    encoded = [coder.encode(v) for v in values]
    tracemalloc.start()
    try:
        held = [coder.decode(e) for e in encoded]
        size, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(held) == len(values)
    return size


def test_a_grouping_holds_a_third_of_the_memory_for_packed_rows() -> None:
    records = [TableRow(f"/data/train.csv.gz:line {n}", (KEY, LABELS)) for n in range(2000)]
    packed = [CODEC.pack_row(record, LABEL_ROW) for record in records]
    assert _held_bytes(packed) * 3 < _held_bytes(records)


@pytest.mark.parametrize(
    ("row", "value_type"),
    [
        (TableRow("meta.csv:line 2", ImagePath(10003156, 5, "d1")), ImagePath),
        (TableRow("split.csv:line 2", Split.VALID), Split),
        (TableRow("meta.csv:line 2", "PA"), None),
        (RefusedRow("meta.csv:line 3", Reason.BAD_LABEL_ROW, "no ViewPosition"), None),
    ],
    ids=["attrs", "coded", "plain", "refused"],
)
def test_a_table_row_packs_to_bytes_and_back(row: TableRow | RefusedRow, value_type: Any) -> None:
    packed = ASSEMBLY.pack_row(row, value_type)
    assert _plain(from_bytes(packed))
    unpacked = ASSEMBLY.unpack_row(packed, value_type)
    assert unpacked == row
    assert type(getattr(unpacked, "value", None)) is type(getattr(row, "value", None))


def test_a_joined_image_packs_to_bytes_and_back() -> None:
    item = ImageItem("a.tar#p/x.jpg", KEY, MemberRef("a.tar", "p/x.jpg", 1536, 3400))
    rows = (("metadata_rows", "meta.csv:line 2"), ("split_rows", "s"))
    joined = ASSEMBLY.pack_joined("files/p10/p1/s5/d1.jpg", item, rows)
    assert _plain(from_bytes(joined))
    assert ASSEMBLY.unpack_joined(joined) == ("files/p10/p1/s5/d1.jpg", item, rows)
    refused = ASSEMBLY.pack_refused("p/x.jpg", Reason.MISSING_SPLIT, "no split row")
    assert ASSEMBLY.unpack_joined(refused) == ("p/x.jpg", Reason.MISSING_SPLIT, "no split row")


def test_a_group_packs_to_bytes_and_back() -> None:
    for label_where in ("labels.csv:line 4", None):
        packed = ASSEMBLY.pack_attached(("files/p10/p1/s5/d1.jpg",), label_where)
        assert ASSEMBLY.unpack_attached(packed) == (("files/p10/p1/s5/d1.jpg",), label_where)


@pytest.mark.parametrize(
    ("where", "packed"),
    [
        ("gs://b/meta.csv:line 7", (0, 7)),
        ("/data/labels.csv:line 12", (1, 12)),
        ("/data/other.csv:line 3", "/data/other.csv:line 3"),  # a file it was not given
        ("files/p10/p1/s5", "files/p10/p1/s5"),  # a study
        ("gs://b/meta.csv:line x", "gs://b/meta.csv:line x"),
    ],
)
def test_a_row_where_packs_to_its_file_index_and_line(where: str, packed: Any) -> None:
    wheres = Wheres(("gs://b/meta.csv", "/data/labels.csv"))
    assert wheres.pack(where) == packed
    assert wheres.unpack(wheres.pack(where)) == where
