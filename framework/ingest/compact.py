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
from datathon_etl.framework.ingest.join import ImageItem, LabelRecord, Refused
from datathon_etl.framework.quarantine import Reason

__all__ = ["JoinCodec", "Wheres", "class_codec", "from_bytes", "to_bytes"]

_CODER = coders.FastPrimitivesCoder()

# An ImageItem's ref, by kind: a tar member, a file URI, a transformed image, a refusal.
_MEMBER, _URI, _TRANSFORMED, _REFUSED = range(4)


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
def class_codec(cls: type | None) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """(pack, unpack) for one declared attrs class: a tuple of its fields, enums as ints.

    Args:
        cls: The attrs class, a coded value's enum (packed as its int), or
            None for values that are plain already (passed through as they are).
    """
    if cls is None:
        return _identity, _identity
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
    """Packs ``(path, ImageItem)`` and ``(path, LabelRecord)`` into ``(path, bytes)``, and back.

    Attributes:
        key_type: The attrs class of the keys, or None for keys that are plain
            values already (a path string).
        labels_type: The attrs class of the labels, or None for plain values
            (a dict of a query's row).
        wheres: Packs the label rows' ``where``.
    """

    key_type: type | None = None
    labels_type: type | None = None
    wheres: Wheres = Wheres()

    def pack_image(self, pair: tuple[str, ImageItem[Any]]) -> tuple[str, bytes]:
        """``(path, ImageItem)`` -> ``(path, bytes)``."""
        path, item = pair
        pack_key, _ = class_codec(self.key_type)
        source = None if item.source == _ref_source(item.ref) else item.source
        return path, to_bytes((source, pack_key(item.key), _pack_ref(item.ref)))

    def unpack_image(self, packed: bytes) -> ImageItem[Any]:
        """What `pack_image` packed -> the `ImageItem`."""
        source, key, ref = from_bytes(packed)
        _, unpack_key = class_codec(self.key_type)
        item_ref = _unpack_ref(ref)
        return ImageItem(source or _ref_source(item_ref) or "", unpack_key(key), item_ref)

    def pack_row(self, pair: tuple[str, LabelRecord[Any, Any]]) -> tuple[str, bytes]:
        """``(path, LabelRecord)`` -> ``(path, bytes)``."""
        path, record = pair
        pack_key, _ = class_codec(self.key_type)
        pack_labels, _ = class_codec(self.labels_type)
        where = self.wheres.pack(record.where)
        return path, to_bytes((where, pack_key(record.key), pack_labels(record.labels)))

    def unpack_row(self, packed: bytes) -> LabelRecord[Any, Any]:
        """What `pack_row` packed -> the `LabelRecord`."""
        where, key, labels = from_bytes(packed)
        _, unpack_key = class_codec(self.key_type)
        _, unpack_labels = class_codec(self.labels_type)
        return LabelRecord(self.wheres.unpack(where), unpack_key(key), unpack_labels(labels))
