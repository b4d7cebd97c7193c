"""The rules that join images with their tables' rows, without multiplying anything.

One mechanism for every data set. Each image is joined on its path with one
row of every per-image table (the label CSV of a data set labelled per image,
metadata and split tables, split lists), and, where labels come per group
(a study), on its group with the group's label row. For each path (and each
group) a pure function decides which image and which row of each table go on,
and quarantines every other record with a reason: exactly one image and one
row per table (or identical duplicate rows) make one labelled image; anything
else is refused, never a cartesian product. The Beam steps around these
rules are in `assemble`; only small references travel (`compact`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

import attrs

from datathon_etl.framework.manifest import IMAGES
from datathon_etl.framework.quarantine import Quarantined, Reason, Stage

__all__ = [
    "Choice",
    "Group",
    "GroupJoin",
    "ImageItem",
    "JoinSpec",
    "LabelRecord",
    "PathJoin",
    "Refused",
    "RefusedRow",
    "Table",
    "TableRow",
    "choose",
    "join_group",
    "join_path",
]

K = TypeVar("K")
L = TypeVar("L")

Refusal = tuple[str, Quarantined]
"""A refused record with its manifest stage (`IMAGES` for an image, a table's rows' stage)."""


@attrs.frozen
class ImageItem(Generic[K]):
    """One image found in the inputs, by reference.

    Attributes:
        source: Where its bytes are (``archive#member`` or a file URI).
        key: The key parsed from its path (then its full key, once joined).
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
class TableRow:
    """One parsed row of a table: where it is (``file:line N``) and its value."""

    where: str
    value: Any


@attrs.frozen
class RefusedRow:
    """A row that did not parse but whose join key did: it refuses what it joins with.

    The row itself is quarantined where it was parsed; this marker only
    makes sure its image (or group) is not used as if the row were absent,
    and carries the row's reason to it.
    """

    where: str
    reason: Reason
    detail: str


@attrs.frozen
class Table:
    """A per-image table, as the join sees it.

    Attributes:
        name: Names it in details (``no split list row``).
        stage: The manifest stage of its rows (``label_rows``, ``split_lists``).
        missing: Why an image without a row in it is refused; None: such an
            image goes on, its value in this table None (an optional table).
        value_type: What packs a row's value (`compact.class_codec`): an
            attrs class, an enum, None for plain values, or a tuple of those
            for a tuple value.
    """

    name: str
    stage: str
    missing: Reason | None
    value_type: Any = None


@attrs.frozen
class Group:
    """Labels per group: each image is joined on its group with the group's label row.

    Attributes:
        name: Names the group in details (``study``).
        of: Key -> the group, as the label rows are keyed; given the full key,
            or the path's key of an image refused before its key was built.
        stage: The manifest stage of the label rows.
        labels_type: What packs the labels (`compact.class_codec`).
        no_labels: The labels of an image whose group has no label row.
    """

    name: str
    of: Callable[[Any], str]
    stage: str
    labels_type: Any
    no_labels: Any


@attrs.frozen
class JoinSpec:
    """What one data set's join is made of.

    Attributes:
        tables: The per-image tables, in the order `assemble` takes their values.
        assemble: (path key, one value per table) -> (full key, labels); the
            labels are ignored when `group` gives them.
        path_key_type: What packs the keys parsed from paths (`class_codec`).
        key_type: What packs the full keys.
        group: Set when labels come per group.
    """

    tables: tuple[Table, ...]
    assemble: Callable[..., tuple[Any, Any]]
    path_key_type: Any = None
    key_type: Any = None
    group: Group | None = None


@attrs.frozen
class LabelRecord(Generic[K, L]):
    """An image's full key and labels, and the rows they came from.

    Attributes:
        key: The image's full key.
        labels: Its labels.
        rows: (stage, where) of each table row it used: they are written
            with it, or refused with it.
        group: Its group, when labels are per group (its label row's fate
            is decided once every image of the group is done).
    """

    key: K
    labels: L
    rows: tuple[tuple[str, str], ...] = ()
    group: str | None = None


@attrs.frozen
class Choice:
    """What one image (or group) makes of its rows in one table.

    Attributes:
        used: The row that goes on, if any.
        refusal: (reason, detail) when the rows refuse the image: none where
            one is needed, conflicting ones, or one that did not parse.
        extras: Identical duplicates of `used`, refused as ``duplicate_label_row``.
    """

    used: TableRow | None
    refusal: tuple[Reason, str] | None = None
    extras: tuple[TableRow, ...] = ()


def choose(rows: Iterable[TableRow | RefusedRow], table: str, missing: Reason | None) -> Choice:
    """Picks the row of one image (or group) in one table, never a product.

    Args:
        rows: The rows that share the image's path (or the group).
        table: The table's name, for details.
        missing: The reason to refuse the image for when there is no row;
            None when no row is fine (a group without labels).

    Returns:
        The choice: one row (identical duplicates aside), or a refusal.
    """
    ordered = sorted(rows, key=lambda r: r.where)
    refused = [r for r in ordered if isinstance(r, RefusedRow)]
    if refused:
        bad = refused[0]
        return Choice(None, (bad.reason, f"its {table} row {bad.where} was refused: {bad.detail}"))
    good = [r for r in ordered if isinstance(r, TableRow)]
    if not good:
        return Choice(None, (missing, f"no {table} row") if missing is not None else None)
    first, *rest = good
    if any(r.value != first.value for r in rest):
        wheres = ", ".join(r.where for r in good)
        return Choice(None, (Reason.DUPLICATE_LABEL_ROW, f"conflicting {table} rows ({wheres})"))
    return Choice(first, extras=tuple(rest))


def _extras(key: str, stage: str, choice: Choice) -> Iterable[Refusal]:
    if choice.used is not None:
        detail = f"identical to {choice.used.where}, which was used"
        for extra in choice.extras:
            yield (
                stage,
                Quarantined(key, Stage.JOIN, Reason.DUPLICATE_LABEL_ROW, detail, extra.where),
            )


@attrs.frozen
class PathJoin(Generic[K]):
    """What the join made of one path.

    Attributes:
        image: The image found (the first by source, if several): it goes on
            with its path's key unless `refused`.
        values: Its row's value in each table (None: no row in an optional one).
        rows: (stage, where) of those rows.
        refused: (reason, detail) when images were found but none goes on.
        refusals: Every image and row that does not go on.
    """

    image: ImageItem[K] | None
    values: tuple[Any, ...] = ()
    rows: tuple[tuple[str, str], ...] = ()
    refused: tuple[Reason, str] | None = None
    refusals: tuple[Refusal, ...] = ()


def join_path(
    path: str,
    images: Iterable[ImageItem[K]],
    rows: Sequence[Iterable[TableRow | RefusedRow]],
    tables: Sequence[Table],
) -> PathJoin[K]:
    """Decides what becomes of the images and table rows that share a path.

    Args:
        path: The image path they share.
        images: Images found at that path (normally one).
        rows: For each table, its rows naming that path (normally one).
        tables: The tables, in the same order.

    Returns:
        The image that goes on with its rows, if any, and a refusal for every
        image and row that does not.
    """
    found = sorted(images, key=lambda i: i.source)
    per_table = [sorted(table_rows, key=lambda r: r.where) for table_rows in rows]
    good = [
        (table.stage, row)
        for table, table_rows in zip(tables, per_table, strict=True)
        for row in table_rows
        if isinstance(row, TableRow)
    ]

    def refuse(reason: Reason, detail: str) -> tuple[Refusal, ...]:
        return tuple(
            [(IMAGES, Quarantined(path, Stage.JOIN, reason, detail, i.source)) for i in found]
            + [(stage, Quarantined(path, Stage.JOIN, reason, detail, r.where)) for stage, r in good]
        )

    if len(found) > 1:
        sources = ", ".join(i.source for i in found)
        detail = f"{len(found)} images share this path ({sources}); none was used"
        duplicate = (Reason.DUPLICATE_IMAGE, detail)
        return PathJoin(found[0], refused=duplicate, refusals=refuse(*duplicate))
    if not found:
        return PathJoin(
            None, refusals=refuse(Reason.LABELS_WITHOUT_IMAGE, "no image has this path")
        )
    (image,) = found
    choices = [
        choose(table_rows, table.name, table.missing)
        for table, table_rows in zip(tables, per_table, strict=True)
    ]
    refusal = next((c.refusal for c in choices if c.refusal is not None), None)
    if refusal is not None:
        return PathJoin(image, refused=refusal, refusals=refuse(*refusal))
    return PathJoin(
        image,
        tuple(c.used.value if c.used is not None else None for c in choices),
        tuple(
            (t.stage, c.used.where)
            for t, c in zip(tables, choices, strict=True)
            if c.used is not None
        ),
        refusals=tuple(
            r for t, c in zip(tables, choices, strict=True) for r in _extras(path, t.stage, c)
        ),
    )


@attrs.frozen
class GroupJoin:
    """What the join made of one group's images and label rows.

    Attributes:
        labels: The labels its images go on with (None: they are refused).
        used: The label row used (None: none, or the images are refused).
        refusal: (reason, detail) when the label rows refuse every image.
        refusals: Label rows that do not go on; with `refusal`, the images
            and their table rows too.
    """

    labels: Any
    used: str | None = None
    refusal: tuple[Reason, str] | None = None
    refusals: tuple[Refusal, ...] = ()


def join_group(
    group: Group,
    key: str,
    images: Sequence[tuple[str, ImageItem[Any], tuple[tuple[str, str], ...]]],
    refused: Sequence[tuple[str, Reason, str]],
    rows: Iterable[TableRow | RefusedRow],
) -> GroupJoin:
    """Decides the labels of one group's images, from its label rows.

    Args:
        group: The declaration.
        key: The group.
        images: (path, image, its table rows as (stage, where)) of each image
            that went on from the path join.
        refused: (path, reason, detail) of each image the path join refused.
        rows: The group's label rows.
    """
    rows = sorted(rows, key=lambda r: r.where)
    good = [r for r in rows if isinstance(r, TableRow)]

    def refuse_rows(reason: Reason, detail: str) -> tuple[Refusal, ...]:
        return tuple(
            (group.stage, Quarantined(key, Stage.JOIN, reason, detail, r.where)) for r in good
        )

    if not images:
        # Its images were all refused (their reason goes on), or there were none.
        if refused:
            path, reason, detail = min(refused)
            detail = f"no image of this {group.name} was used ({path}: {detail})"
            return GroupJoin(None, refusals=refuse_rows(reason, detail))
        detail = f"no image of this {group.name} was found"
        return GroupJoin(None, refusals=refuse_rows(Reason.LABELS_WITHOUT_IMAGE, detail))
    choice = choose(rows, "label", None)
    if choice.refusal is not None:
        reason, detail = choice.refusal
        refusals = list(refuse_rows(reason, detail))
        for path, item, image_rows in sorted(images, key=lambda i: i[0]):
            refusals.append((IMAGES, Quarantined(path, Stage.JOIN, reason, detail, item.source)))
            refusals += [
                (stage, Quarantined(path, Stage.JOIN, reason, detail, where))
                for stage, where in image_rows
            ]
        return GroupJoin(None, refusal=choice.refusal, refusals=tuple(refusals))
    if choice.used is None:
        return GroupJoin(group.no_labels)
    return GroupJoin(
        choice.used.value, choice.used.where, refusals=tuple(_extras(key, group.stage, choice))
    )
