"""The one join: each image with one row of every per-image table, then its group's labels.

The same rules for every data set, table-driven over the shapes they take:
a per-image label table (MIMIC-CXR, CheXpert), the same with split lists
(NIH ChestX-ray14), per-image metadata and split tables (MIMIC-CXR-JPG),
and labels per group (a study). Every image and row either goes on or is
refused, with its stage, and nothing is multiplied.
"""

from __future__ import annotations

from typing import Any

import pytest

from datathon_etl.framework.ingest.join import (
    Group,
    ImageItem,
    RefusedRow,
    Table,
    TableRow,
    choose,
    join_group,
    join_path,
)
from datathon_etl.framework.manifest import IMAGES
from datathon_etl.framework.quarantine import Reason, Stage

P = "train/p1/s01/view1_frontal.jpg"
LABEL = Table("label", "label_rows", Reason.IMAGE_WITHOUT_LABELS)
SPLIT_LIST = Table("split list", "split_lists", Reason.MISSING_SPLIT)
METADATA = Table("metadata", "metadata_rows", Reason.MISSING_METADATA)
SPLIT = Table("split", "split_rows", Reason.MISSING_SPLIT)
PER_IMAGE = (LABEL,)
LISTED = (LABEL, SPLIT_LIST)
PER_STUDY = (METADATA, SPLIT)


def image(source: str) -> ImageItem[str]:
    return ImageItem(source, "key", ref=source)


def row(where: str, value: Any = "A") -> TableRow:
    return TableRow(where, value)


A = [image("a.tar#x")]
TWO = [image("b.tar#x"), image("a.tar#x")]
BAD = RefusedRow("t.csv:line 7", Reason.UNKNOWN_CODE, "Edema: '2.0'")


@pytest.mark.parametrize(
    ("tables", "images", "rows", "used", "refused"),
    [
        # (stage, reason) of each refusal; `used`: the wheres of the rows used.
        (PER_IMAGE, A, [[row("t.csv:line 2")]], ["t.csv:line 2"], []),
        (
            PER_IMAGE,
            A,
            [[]],
            None,
            [(IMAGES, Reason.IMAGE_WITHOUT_LABELS)],
        ),
        (
            PER_IMAGE,
            [],
            [[row("t.csv:line 2")]],
            None,
            [("label_rows", Reason.LABELS_WITHOUT_IMAGE)],
        ),
        (
            PER_IMAGE,
            A,
            [[row("t.csv:line 9"), row("t.csv:line 2")]],
            ["t.csv:line 2"],  # the first row by location is kept
            [("label_rows", Reason.DUPLICATE_LABEL_ROW)],
        ),
        (
            PER_IMAGE,
            A,
            [[row("t.csv:line 2"), row("t.csv:line 3", "B")]],
            None,
            [(IMAGES, Reason.DUPLICATE_LABEL_ROW)]
            + [("label_rows", Reason.DUPLICATE_LABEL_ROW)] * 2,
        ),
        (
            PER_IMAGE,
            TWO,
            [[row("t.csv:line 2")]],
            None,
            [(IMAGES, Reason.DUPLICATE_IMAGE)] * 2 + [("label_rows", Reason.DUPLICATE_IMAGE)],
        ),
        (
            PER_IMAGE,
            A,
            [[row("t.csv:line 2"), BAD]],  # the bad row was quarantined where it was parsed
            None,
            [(IMAGES, Reason.UNKNOWN_CODE), ("label_rows", Reason.UNKNOWN_CODE)],
        ),
        (
            LISTED,
            A,
            [[row("t.csv:line 2")], [row("test.txt:line 4", 1)]],
            ["t.csv:line 2", "test.txt:line 4"],
            [],
        ),
        (
            LISTED,
            A,
            [[row("t.csv:line 2")], []],  # in no list: the image has the list's reason
            None,
            [(IMAGES, Reason.MISSING_SPLIT), ("label_rows", Reason.MISSING_SPLIT)],
        ),
        (
            LISTED,
            A,
            [[row("t.csv:line 2")], [row("test.txt:line 4", 1), row("train.txt:line 2", 0)]],
            None,
            [(IMAGES, Reason.DUPLICATE_LABEL_ROW), ("label_rows", Reason.DUPLICATE_LABEL_ROW)]
            + [("split_lists", Reason.DUPLICATE_LABEL_ROW)] * 2,
        ),
        (
            LISTED,
            A,
            [[], [row("test.txt:line 4", 1)]],  # the label table comes first
            None,
            [(IMAGES, Reason.IMAGE_WITHOUT_LABELS), ("split_lists", Reason.IMAGE_WITHOUT_LABELS)],
        ),
        (
            LISTED,
            [],
            [[], [row("test.txt:line 4", 1)]],
            None,
            [("split_lists", Reason.LABELS_WITHOUT_IMAGE)],
        ),
        (
            PER_STUDY,
            A,
            [[row("m.csv:line 2", "PA")], [row("s.csv:line 2", 0), row("s.csv:line 3", 0)]],
            ["m.csv:line 2", "s.csv:line 2"],
            [("split_rows", Reason.DUPLICATE_LABEL_ROW)],
        ),
        (
            PER_STUDY,
            A,
            [[], [row("s.csv:line 2", 0)]],
            None,
            [(IMAGES, Reason.MISSING_METADATA), ("split_rows", Reason.MISSING_METADATA)],
        ),
        (
            PER_STUDY,
            A,
            [[row("m.csv:line 2", "PA")], [BAD]],
            None,
            [(IMAGES, Reason.UNKNOWN_CODE), ("metadata_rows", Reason.UNKNOWN_CODE)],
        ),
    ],
    ids=[
        "label-one_to_one",
        "label-no_row",
        "label-no_image",
        "label-identical_rows",
        "label-conflicting_rows",
        "label-two_images",
        "label-refused_row",
        "listed-one_to_one",
        "listed-in_no_list",
        "listed-in_two_lists",
        "listed-no_label_row",
        "listed-no_image",
        "tables-identical_split_rows",
        "tables-no_metadata_row",
        "tables-refused_split_row",
    ],
)
def test_join_path(
    tables: tuple[Table, ...],
    images: list[ImageItem[str]],
    rows: list[list[TableRow | RefusedRow]],
    used: list[str] | None,
    refused: list[tuple[str, Reason]],
) -> None:
    """Every image and parsed row goes on or is refused, under its own stage."""
    joined = join_path(P, images, rows, tables)
    goes_on = joined.image is not None and joined.refused is None
    assert ([where for _, where in joined.rows] if goes_on else None) == used
    assert sorted((stage, q.reason) for stage, q in joined.refusals) == sorted(refused)
    if goes_on:
        assert joined.image == images[0]
        assert [stage for stage, _ in joined.rows] == [t.stage for t in tables]
        assert len(joined.values) == len(tables)
    # Nothing multiplied, nothing lost: each image and parsed row once.
    good = [r.where for table_rows in rows for r in table_rows if isinstance(r, TableRow)]
    inputs = sorted([i.source for i in images] + good)
    outputs = sorted(
        [q.source for _, q in joined.refusals]
        + ([images[0].source, *(where for _, where in joined.rows)] if goes_on else [])
    )
    assert outputs == inputs
    reasons = {q.reason for stage, q in joined.refusals if stage == IMAGES}
    assert joined.refused is None or {joined.refused[0]} == reasons
    for _, q in joined.refusals:
        assert q.path == P
        assert q.stage is Stage.JOIN


def test_details_have_one_shape_whatever_the_table() -> None:
    """The same rule words the same refusal the same way, naming the table."""
    for table in (LABEL, SPLIT_LIST, METADATA):
        missing = join_path(P, A, [[]], (table,))
        assert missing.refused == (table.missing, f"no {table.name} row")
        conflicting = join_path(P, A, [[row("f:line 2"), row("f:line 3", "B")]], (table,))
        assert conflicting.refused == (
            Reason.DUPLICATE_LABEL_ROW,
            f"conflicting {table.name} rows (f:line 2, f:line 3)",
        )
        bad = join_path(P, A, [[BAD]], (table,))
        assert bad.refused == (
            Reason.UNKNOWN_CODE,
            f"its {table.name} row t.csv:line 7 was refused: Edema: '2.0'",
        )
        (extra,) = join_path(P, A, [[row("f:line 2"), row("f:line 3")]], (table,)).refusals
        assert extra[1].detail == "identical to f:line 2, which was used"
    (none,) = join_path(P, [], [[row("f:line 2")]], (LABEL,)).refusals
    assert none[1].detail == "no image has this path"


def test_choose_never_multiplies_rows() -> None:
    """One row is used; identical duplicates are extras; conflicts and bad rows refuse."""
    a, b = TableRow("f:line 2", 1), TableRow("f:line 3", 1)
    assert choose([b, a], "label", None) == choose([a, b], "label", None)
    assert choose([a, b], "label", None).extras == (b,)
    assert choose([], "label", None).refusal is None


STUDY = Group("study", lambda key: str(key), "label_rows", None, "NO LABELS")
IMAGE_ROWS = (("metadata_rows", "m.csv:line 2"), ("split_rows", "s.csv:line 2"))
JOINED = [("s1/a.jpg", image("a.jpg"), IMAGE_ROWS), ("s1/b.jpg", image("b.jpg"), IMAGE_ROWS)]


@pytest.mark.parametrize(
    ("images", "refused", "rows", "labels", "refusals"),
    [
        (JOINED, [], [row("l.csv:line 2", "L")], "L", []),
        (JOINED, [], [], "NO LABELS", []),  # a study without a row: absent labels
        (
            JOINED,
            [],
            [row("l.csv:line 2", "L"), row("l.csv:line 3", "L")],
            "L",
            [("label_rows", Reason.DUPLICATE_LABEL_ROW)],
        ),
        (
            JOINED,
            [],
            [row("l.csv:line 2", "L"), row("l.csv:line 3", "M")],
            None,
            [("label_rows", Reason.DUPLICATE_LABEL_ROW)] * 2
            + [(IMAGES, Reason.DUPLICATE_LABEL_ROW)] * 2
            + [("metadata_rows", Reason.DUPLICATE_LABEL_ROW)] * 2
            + [("split_rows", Reason.DUPLICATE_LABEL_ROW)] * 2,
        ),
        (
            [],
            [("s1/a.jpg", Reason.MISSING_SPLIT, "no split row")],
            [row("l.csv:line 2", "L")],
            None,
            [("label_rows", Reason.MISSING_SPLIT)],
        ),
        ([], [], [row("l.csv:line 2", "L")], None, [("label_rows", Reason.LABELS_WITHOUT_IMAGE)]),
    ],
    ids=["labelled", "no_row", "identical_rows", "conflicting_rows", "images_refused", "no_image"],
)
def test_join_group(
    images: list[Any],
    refused: list[tuple[str, Reason, str]],
    rows: list[TableRow],
    labels: Any,
    refusals: list[tuple[str, Reason]],
) -> None:
    """A group's label row labels each of its images, or refuses them all, never a product."""
    decided = join_group(STUDY, "s1", images, refused, rows)
    assert (decided.labels if decided.refusal is None and images else None) == labels
    assert sorted((stage, q.reason) for stage, q in decided.refusals) == sorted(refusals)
    if decided.used is not None:
        assert decided.used == min(r.where for r in rows)
    if refused and not images:
        (only,) = decided.refusals
        assert only[1].detail == "no image of this study was used (s1/a.jpg: no split row)"


def test_an_optional_table_without_a_row_gives_none() -> None:
    """A table whose missing row is fine: the image goes on, its value there None."""
    optional = Table("metadata", "metadata_rows", None)
    joined = join_path(P, A, [[row("t.csv:line 2", "labels")], []], (LABEL, optional))
    assert joined.refused is None
    assert joined.refusals == ()
    assert joined.values == ("labels", None)
    assert joined.rows == (("label_rows", "t.csv:line 2"),)
    both = join_path(
        P, A, [[row("t.csv:line 2", "labels")], [row("m.csv:line 3", "PA")]], (LABEL, optional)
    )
    assert both.values == ("labels", "PA")
    # Conflicting or refused rows still refuse the image.
    conflicting = join_path(
        P, A, [[row("t.csv:line 2")], [row("m:line 2"), row("m:line 3", "B")]], (LABEL, optional)
    )
    assert conflicting.refused == (
        Reason.DUPLICATE_LABEL_ROW,
        "conflicting metadata rows (m:line 2, m:line 3)",
    )
