"""Records that a shuffle holds, packed into bytes: small to hold, fast to code.

The local runner holds a grouping's whole input in memory as decoded Python
objects, and Beam codes any object its own coder does not know with pickle,
class and field names included. Each record is packed into a tuple of plain
values (coded values as their ints), then into one ``bytes`` by Beam's own
coder: a grouping then holds one small object per record instead of a tree
of them (figures in BENCHMARKS.md). Records are packed just before a
grouping and rebuilt just after it.
"""

from __future__ import annotations

import enum
import functools
import typing
from collections.abc import Callable
from typing import Any

import attrs
from apache_beam.coders import coders

from datathon_etl.framework.archives import MemberRef
from datathon_etl.framework.images import Transformed
from datathon_etl.framework.ingest.join import ImageItem, Refused, RefusedRow, TableRow
from datathon_etl.framework.quarantine import Reason

__all__ = ["JoinCodec", "Wheres", "class_codec", "from_bytes", "to_bytes"]

_CODER = coders.FastPrimitivesCoder()

# An ImageItem's ref, by kind: a tar member, a file URI, a transformed image, a refusal.
_MEMBER, _URI, _TRANSFORMED, _REFUSED = range(4)
# A packed row: parsed, or the marker of one refused; a packed joined image: kept, or refused.
_ROW, _REFUSED_ROW, _JOINED, _REFUSED_IMAGE = range(4)


def to_bytes(values: tuple[Any, ...]) -> bytes:
    """A tuple of plain values -> one ``bytes`` (Beam's coder: no pickling)."""
    data: bytes = _CODER.encode(values)
    return data


def from_bytes(data: bytes) -> Any:
    """What `to_bytes` made -> the tuple."""
    return _CODER.decode(data)


def _pack_ref(ref: Any) -> tuple[Any, ...]:
    if isinstance(ref, MemberRef):
        return (_MEMBER, ref.archive, ref.name, ref.offset, ref.size)
    if isinstance(ref, str):
        return (_URI, ref)
    if isinstance(ref, Transformed):
        return (_TRANSFORMED, ref.image, ref.width, ref.height, ref.attributes)
    if isinstance(ref, Refused):
        return (_REFUSED, str(ref.reason), ref.detail)
    raise TypeError(f"no packed form for an image ref of type {type(ref).__name__}")


def _unpack_ref(packed: tuple[Any, ...]) -> Any:
    kind, *values = packed
    if kind == _MEMBER:
        return MemberRef(*values)
    if kind == _REFUSED:
        return Refused(Reason(values[0]), values[1])
    if kind == _TRANSFORMED:
        image, width, height, attributes = values
        return Transformed(image, width, height, tuple(attributes))
    return values[0]


def _ref_source(ref: Any) -> str | None:
    """The source an image's ref implies (so that it need not travel twice)."""
    if isinstance(ref, MemberRef):
        return ref.source
    return ref if isinstance(ref, str) else None


def _identity(value: Any) -> Any:
    return value


@functools.cache
def class_codec(cls: Any) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """(pack, unpack) for one declared attrs class: a tuple of its fields, enums as ints.

    Args:
        cls: The attrs class, a coded value's enum (packed as its int), None
            for values that are plain already (passed through as they are),
            or a tuple of those for a tuple value (each packed by its own).
    """
    if cls is None:
        return _identity, _identity
    if isinstance(cls, tuple):
        codecs = [class_codec(c) for c in cls]
        return (
            lambda value: tuple(p(v) for (p, _), v in zip(codecs, value, strict=True)),
            lambda values: tuple(u(v) for (_, u), v in zip(codecs, values, strict=True)),
        )
    if issubclass(cls, enum.IntEnum):
        return int, cls
    declared: Any = cls  # an attrs class (mypy cannot tell after the enum test)
    fields = attrs.fields(attrs.resolve_types(declared))
    members: list[dict[int, enum.IntEnum] | None] = []
    for field in fields:
        args = typing.get_args(field.type) or (field.type,)
        coded = [a for a in args if isinstance(a, type) and issubclass(a, enum.IntEnum)]
        members.append({int(m): m for m in coded[0]} if coded else None)
    names = [field.name for field in fields]

    def pack(value: Any) -> tuple[Any, ...]:
        return tuple(
            v if table is None or v is None else int(v)
            for v, table in zip((getattr(value, n) for n in names), members, strict=True)
        )

    def unpack(values: tuple[Any, ...]) -> Any:
        return cls(
            *(
                v if table is None or v is None else table[v]
                for v, table in zip(values, members, strict=True)
            )
        )

    return pack, unpack


@functools.cache
def _file_index(files: tuple[str, ...]) -> dict[str, int]:
    return {uri: i for i, uri in enumerate(files)}


@attrs.frozen
class Wheres:
    """Packs a CSV row's ``<file URI>:line <N>`` as (file index, N): a few bytes, not a path.

    Attributes:
        files: The CSV files whose rows it packs; any other ``where`` (a
            query's row, a study) stays as it is.
    """

    files: tuple[str, ...] = ()

    def pack(self, where: str) -> str | tuple[int, int]:
        """``where`` -> (file index, line), or ``where`` itself."""
        uri, sep, line = where.rpartition(":line ")
        index = _file_index(self.files).get(uri)
        if sep and index is not None and line.isdigit():
            return index, int(line)
        return where

    def unpack(self, packed: str | tuple[int, int]) -> str:
        """What `pack` packed -> ``where``."""
        if isinstance(packed, str):
            return packed
        index, line = packed
        return f"{self.files[index]}:line {line}"


@attrs.frozen
class JoinCodec:
    """Packs what the join's groupings hold into bytes, and back.

    Attributes:
        path_key_type: What packs the keys parsed from image paths (`class_codec`).
        key_type: What packs the images' full keys.
        wheres: Packs the rows' ``where``.
    """

    path_key_type: Any = None
    key_type: Any = None
    wheres: Wheres = Wheres()

    def pack_image(self, pair: tuple[str, ImageItem[Any]]) -> tuple[str, bytes]:
        """``(path, ImageItem)`` as found (its path's key) -> ``(path, bytes)``."""
        path, item = pair
        return path, to_bytes(_pack_item(item, self.path_key_type))

    def unpack_image(self, packed: bytes) -> ImageItem[Any]:
        """What `pack_image` packed -> the `ImageItem`."""
        return _unpack_item(from_bytes(packed), self.path_key_type)

    def pack_row(self, row: TableRow | RefusedRow, value_type: Any) -> bytes:
        """A parsed row (or the marker of one refused) -> bytes, its value by `class_codec`."""
        where = self.wheres.pack(row.where)
        if isinstance(row, TableRow):
            pack_value, _ = class_codec(value_type)
            return to_bytes((_ROW, where, pack_value(row.value)))
        return to_bytes((_REFUSED_ROW, where, str(row.reason), row.detail))

    def unpack_row(self, packed: bytes, value_type: Any) -> TableRow | RefusedRow:
        """What `pack_row` packed -> the row."""
        kind, where, *values = from_bytes(packed)
        if kind == _ROW:
            _, unpack_value = class_codec(value_type)
            return TableRow(self.wheres.unpack(where), unpack_value(values[0]))
        return RefusedRow(self.wheres.unpack(where), Reason(values[0]), values[1])

    def pack_joined(
        self, path: str, item: ImageItem[Any], rows: tuple[tuple[str, str], ...]
    ) -> bytes:
        """An image joined on its path (full key, its rows as (stage, where)) -> bytes."""
        packed_rows = tuple((stage, self.wheres.pack(where)) for stage, where in rows)
        return to_bytes((_JOINED, path, _pack_item(item, self.key_type), packed_rows))

    def pack_refused(self, path: str, reason: Reason, detail: str) -> bytes:
        """An image the path join refused -> bytes."""
        return to_bytes((_REFUSED_IMAGE, path, str(reason), detail))

    def unpack_joined(
        self, packed: bytes
    ) -> tuple[str, ImageItem[Any], tuple[tuple[str, str], ...]] | tuple[str, Reason, str]:
        """What `pack_joined` (path, item, rows) or `pack_refused` (path, reason, detail) packed."""
        kind, path, *values = from_bytes(packed)
        if kind == _JOINED:
            item, rows = values
            unpacked = tuple((stage, self.wheres.unpack(where)) for stage, where in rows)
            return path, _unpack_item(item, self.key_type), unpacked
        return path, Reason(values[0]), values[1]

    def pack_attached(self, paths: tuple[str, ...], label_where: str | None) -> bytes:
        """A group's images that went on, and its label row's ``where`` -> bytes."""
        where = None if label_where is None else self.wheres.pack(label_where)
        return to_bytes((paths, where))

    def unpack_attached(self, packed: bytes) -> tuple[tuple[str, ...], str | None]:
        """What `pack_attached` packed -> (paths, label row's ``where``)."""
        paths, where = from_bytes(packed)
        return tuple(paths), None if where is None else self.wheres.unpack(where)


def _pack_item(item: ImageItem[Any], key_type: Any) -> tuple[Any, ...]:
    pack_key, _ = class_codec(key_type)
    source = None if item.source == _ref_source(item.ref) else item.source
    return (source, pack_key(item.key), _pack_ref(item.ref))


def _unpack_item(packed: tuple[Any, ...], key_type: Any) -> ImageItem[Any]:
    source, key, ref = packed
    _, unpack_key = class_codec(key_type)
    item_ref = _unpack_ref(ref)
    return ImageItem(source or _ref_source(item_ref) or "", unpack_key(key), item_ref)
