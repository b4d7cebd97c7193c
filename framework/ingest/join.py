"""Joining images with label rows on the image path, without multiplying anything.

The join sees only small references (archive member refs, parsed label rows),
never image bytes. For each path it decides, as a pure function, which image
and which label row go on, and quarantines every other record with a reason:
exactly one image and one label row (or identical duplicate rows) make one
example; anything else is refused, never a cartesian product.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Generic, TypeVar

import attrs

from datathon_etl.framework.quarantine import Quarantined, Reason, Stage

__all__ = ["Decision", "ImageItem", "LabelRecord", "Refused", "decide"]

K = TypeVar("K")
L = TypeVar("L")


@attrs.frozen
class LabelRecord(Generic[K, L]):
    """One parsed label row.

    Attributes:
        where: ``file:line N`` of the row.
        key: The image's key: parsed from the row's path, with the key
            columns the row declares (the example's key).
        labels: The parsed labels.
    """

    where: str
    key: K
    labels: L


@attrs.frozen
class ImageItem(Generic[K]):
    """One image found in the inputs, by reference.

    Attributes:
        source: Where its bytes are (``archive#member`` or a file URI).
        key: The key parsed from its path.
        ref: What the reading step needs to fetch the bytes (a tar `MemberRef`,
            a file URI), or the `Transformed` image that had to be processed
            where it was read (members of compressed tars), or `Refused` if
            that failed.
    """

    source: str
    key: K
    ref: Any


@attrs.frozen
class Refused:
    """An `ImageItem` ref: the image was refused where it was read (a compressed tar's member)."""

    reason: Reason
    detail: str


@attrs.frozen
class Decision(Generic[K, L]):
    """What the join made of one path.

    Attributes:
        example: The (image, label row) pair that goes on, if any.
        images: Quarantine records of the images that do not go on.
        rows: Quarantine records of the label rows that do not go on.
    """

    example: tuple[ImageItem[K], LabelRecord[K, L]] | None
    images: tuple[Quarantined, ...] = ()
    rows: tuple[Quarantined, ...] = ()


def _row(path: str, record: LabelRecord[Any, Any], reason: Reason, detail: str) -> Quarantined:
    return Quarantined(path, Stage.JOIN, reason, detail, record.where)


def _image(path: str, item: ImageItem[Any], reason: Reason, detail: str) -> Quarantined:
    return Quarantined(path, Stage.JOIN, reason, detail, item.source)


def decide(
    path: str,
    images: Iterable[ImageItem[K]],
    rows: Iterable[LabelRecord[K, L]],
) -> Decision[K, L]:
    """Decides what becomes of the images and label rows that share a path.

    Args:
        path: The image path they share.
        images: Images found at that path (normally one).
        rows: Label rows naming that path (normally one).

    Returns:
        The example to make, if any, and a quarantine record for every image
        and row that does not go into it.
    """
    image_list = sorted(images, key=lambda i: i.source)
    row_list: Sequence[LabelRecord[K, L]] = sorted(rows, key=lambda r: r.where)
    if len(image_list) > 1:
        sources = ", ".join(i.source for i in image_list)
        detail = f"{len(image_list)} images share this path ({sources}); none was used"
        return Decision(
            None,
            tuple(_image(path, i, Reason.DUPLICATE_IMAGE, detail) for i in image_list),
            tuple(_row(path, r, Reason.DUPLICATE_IMAGE, detail) for r in row_list),
        )
    if not image_list:
        detail = "no image has this path"
        return Decision(
            None, rows=tuple(_row(path, r, Reason.LABELS_WITHOUT_IMAGE, detail) for r in row_list)
        )
    (image,) = image_list
    if not row_list:
        detail = "no label row has this path"
        return Decision(None, (_image(path, image, Reason.IMAGE_WITHOUT_LABELS, detail),))
    first, *rest = row_list
    if any((r.key, r.labels) != (first.key, first.labels) for r in rest):
        wheres = ", ".join(r.where for r in row_list)
        detail = f"conflicting label rows ({wheres}); the image was not used"
        return Decision(
            None,
            (_image(path, image, Reason.DUPLICATE_LABEL_ROW, detail),),
            tuple(_row(path, r, Reason.DUPLICATE_LABEL_ROW, detail) for r in row_list),
        )
    detail = f"identical to {first.where}, which was used"
    return Decision(
        (image, first), rows=tuple(_row(path, r, Reason.DUPLICATE_LABEL_ROW, detail) for r in rest)
    )
