"""The image/label join: one example per path at most, every other record quarantined."""

from __future__ import annotations

import pytest

from datathon_etl.framework.ingest.join import ImageItem, LabelRecord, decide
from datathon_etl.framework.quarantine import Reason, Stage

P = "train/p1/s01/view1_frontal.jpg"


def image(source: str) -> ImageItem[str]:
    return ImageItem(source, "key", ref=source)


def row(where: str, labels: str = "A") -> LabelRecord[str, str]:
    return LabelRecord(where, "key", labels)


@pytest.mark.parametrize(
    ("images", "rows", "example", "image_reasons", "row_reasons"),
    [
        ([image("a.tar#x")], [row("t.csv:line 2")], ("a.tar#x", "t.csv:line 2"), [], []),
        ([image("a.tar#x")], [], None, [Reason.IMAGE_WITHOUT_LABELS], []),
        ([], [row("t.csv:line 2")], None, [], [Reason.LABELS_WITHOUT_IMAGE]),
        (
            [image("a.tar#x")],
            [row("t.csv:line 9"), row("t.csv:line 2")],
            ("a.tar#x", "t.csv:line 2"),  # the first row by location is kept
            [],
            [Reason.DUPLICATE_LABEL_ROW],
        ),
        (
            [image("a.tar#x")],
            [row("t.csv:line 2"), row("t.csv:line 3", labels="B")],
            None,
            [Reason.DUPLICATE_LABEL_ROW],
            [Reason.DUPLICATE_LABEL_ROW] * 2,
        ),
        (
            [image("a.tar#x"), image("b.tar#x")],
            [row("t.csv:line 2")],
            None,
            [Reason.DUPLICATE_IMAGE] * 2,
            [Reason.DUPLICATE_IMAGE],
        ),
    ],
    ids=["one_to_one", "no_labels", "no_image", "identical_rows", "conflicting_rows", "two_images"],
)
def test_decide(images, rows, example, image_reasons, row_reasons):
    """Every image and row is either in the example or quarantined, with its reason."""
    decision = decide(P, images, rows)
    got = (decision.example[0].source, decision.example[1].where) if decision.example else None
    assert got == example
    assert [q.reason for q in decision.images] == image_reasons
    assert [q.reason for q in decision.rows] == row_reasons
    used_images = 1 if example else 0
    assert used_images + len(decision.images) == len(images)
    assert used_images + len(decision.rows) == len(rows)
    for q in (*decision.images, *decision.rows):
        assert q.path == P
        assert q.stage is Stage.JOIN
        assert q.source in {i.source for i in images} | {r.where for r in rows}
