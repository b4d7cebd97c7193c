"""cattrs conversions: source rows -> label instances, instances <-> table rows."""

from __future__ import annotations

import enum
import functools
import typing
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Protocol, TypeVar, cast

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

from datathon_etl.framework.schema.fields import FLAGS, SOURCE, MultiValued
from datathon_etl.framework.schema.types import Resolved, resolve

__all__ = [
    "SourceCoded",
    "SourceRowError",
    "UnknownCodeError",
    "from_row",
    "parse_source_fields",
    "parse_source_row",
    "source_columns",
    "to_row",
]

T = TypeVar("T")


class SourceCoded(Protocol):
    """An enum that parses its own source-file codes (``"1.0"`` -> POSITIVE)."""

    @classmethod
    def from_source(cls, text: str) -> Any:
        """Returns the member for a source file's text, or raises UnknownCodeError."""
        ...


class UnknownCodeError(ValueError):
    """A coded value (e.g. a label code) outside the enum's source codes."""


class SourceRowError(ValueError):
    """A source row that does not fit its declared class.

    The message names the dataset, the record, the column and the problem:
    ``mimic_cxr: train.csv.gz:row 7: Edema: unknown CheXpert code '2.0'``.

    Attributes:
        where: The record's location.
        column: The source column at fault.
        problem: What is wrong with it.
        unknown_code: Whether the problem is a code outside the enum's codes.
    """

    def __init__(
        self, where: str, column: str, problem: str, *, unknown_code: bool = False
    ) -> None:
        super().__init__(f"{where}: {column}: {problem}")
        self.where = where
        self.column = column
        self.problem = problem
        self.unknown_code = unknown_code


def _structure_text(text: Any, cls: Any) -> Any:
    """Parses one source cell by its declared type; blank means absent."""
    if not isinstance(text, str):
        raise TypeError(f"expected text, got {type(text).__name__}")
    text = text.strip()
    if issubclass(cls, enum.Enum):
        if hasattr(cls, "from_source"):
            return cls.from_source(text)
        try:
            return cls(int(text))
        except ValueError:
            raise UnknownCodeError(f"unknown {cls.__name__} code {text!r}") from None
    if cls is bool:
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"not a boolean: {text!r}")
        return text.lower() in ("true", "1")
    if cls in (int, float) and not text:
        raise ValueError("blank value")
    return cls(text)


def _source_converter() -> cattrs.Converter:
    converter = cattrs.Converter(detailed_validation=True)
    for scalar in (int, float, str, bool):
        converter.register_structure_hook(scalar, _structure_text)
    converter.register_structure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, enum.Enum), _structure_text
    )
    return converter


_SOURCE = _source_converter()
_ROWS = cattrs.Converter()


@functools.cache
def _source_structure_fn(cls: type) -> Any:
    renames: dict[str, Any] = {
        f.name: override(rename=_flag_key(f.name) if f.metadata.get(FLAGS) else f.metadata[SOURCE])
        for f in attrs.fields(cls)
        if f.metadata.get(SOURCE)
    }
    return make_dict_structure_fn(cls, _SOURCE, **renames)


def _flag_key(name: str) -> str:
    """Where a flag's ``true``/``false`` goes in a row, apart from any CSV column."""
    return f"{FLAGS}:{name}"


@functools.cache
def _flag_columns(cls: type) -> tuple[tuple[MultiValued, dict[str, str]], ...]:
    """Each multi-valued source column of ``cls``: its declaration, value -> field name."""
    columns: dict[str, tuple[MultiValued, dict[str, str]]] = {}
    for f in attrs.fields(cls):
        if flags := f.metadata.get(FLAGS):
            declared, value = flags
            columns.setdefault(declared.source, (declared, {}))[1][value] = f.name
    return tuple(columns.values())


def _read_flags(
    declared: MultiValued, fields: Mapping[str, str], row: Mapping[str, str | None], where: str
) -> dict[str, str]:
    """One multi-valued cell -> ``true``/``false`` per flag, under `_flag_key`.

    Raises:
        SourceRowError: The column is missing, the cell blank (unless
            ``blank_is_none``), or it lists an empty, unknown or repeated value.
    """
    column = declared.source
    if column not in row:
        raise SourceRowError(where, column, "missing column")
    cell = (row[column] or "").strip()
    if not cell and not declared.blank_is_none:
        raise SourceRowError(where, column, "blank")
    listed = [value.strip() for value in cell.split(declared.separator)] if cell else []
    for i, value in enumerate(listed):
        if not value:
            raise SourceRowError(where, column, f"an empty value in {cell!r}")
        if value not in fields:
            known = ", ".join(sorted(fields))
            problem = f"unknown value {value!r} in {cell!r} (declared: {known})"
            raise SourceRowError(where, column, problem, unknown_code=True)
        if value in listed[:i]:
            raise SourceRowError(where, column, f"{value!r} listed twice in {cell!r}")
    return {_flag_key(name): str(value in listed).lower() for value, name in fields.items()}


def parse_source_row(cls: type[T], row: Mapping[str, str | None], where: str) -> T:
    """Structures one source-file row (e.g. a CSV dict) into a declared class.

    Each field is read from its declared source column (or its own name);
    enums that define ``from_source`` parse their codes themselves; a blank
    cell is None for ``X | None`` fields, else an error. A `MultiValued`
    column's cell is split once, and each of its flags is whether it lists
    the flag's value.

    Args:
        cls: The attrs class to build.
        row: Column name -> text, as `csv.DictReader` yields it.
        where: The record's location for error messages (dataset, file, row).

    Returns:
        The instance.

    Raises:
        SourceRowError: A column is missing or a value does not parse; the
            first such problem, naming the source column.
    """
    # Blank cells of nullable fields are absent; other blanks go to the type.
    nullable = _nullable_sources(cast(type, cls))
    cleaned = {
        k: None if k in nullable and (v is None or not v.strip()) else v for k, v in row.items()
    }
    for declared, fields in _flag_columns(cast(type, cls)):
        cleaned.update(_read_flags(declared, fields, row, where))
    try:
        instance: T = _source_structure_fn(cast(type, cls))(cleaned, cls)
        return instance
    except cattrs.ClassValidationError as group:
        error, note = group.group_exceptions()[0][0]
        field = next(f for f in attrs.fields(cast(Any, cls)) if f.name == note.name)
        column = field.metadata.get(SOURCE) or field.name
        if isinstance(error, KeyError):
            raise SourceRowError(where, column, "missing column") from group
        unknown = isinstance(error, UnknownCodeError)
        raise SourceRowError(where, column, str(error), unknown_code=unknown) from group


def parse_source_fields(
    cls: type, row: Mapping[str, str | None], where: str, names: Sequence[str]
) -> dict[str, Any]:
    """Parses some fields of a declared class from their source columns.

    Each cell is read as `parse_source_row` reads it (declared source column,
    ``from_source`` codes, blank means None for ``X | None`` fields).

    Args:
        cls: The attrs class that declares the fields.
        row: Column name -> text.
        where: The record's location for error messages.
        names: The fields to read.

    Returns:
        Field name -> value, for `attrs.evolve`.

    Raises:
        SourceRowError: A column is missing or a value does not parse.
    """
    fields = _source_fields(cls)
    values: dict[str, Any] = {}
    for name in names:
        column, resolved = fields[name]
        if column not in row:
            raise SourceRowError(where, column, "missing column")
        text = row[column]
        if resolved.nullable and (text is None or not text.strip()):
            values[name] = None
            continue
        try:
            values[name] = _structure_text(text, resolved.python)
        except KeyError:
            # From a ``from_source`` that looks its codes up (``cls[text]``).
            raise SourceRowError(
                where, column, f"unknown code {text!r}", unknown_code=True
            ) from None
        except (ValueError, TypeError) as error:
            unknown = isinstance(error, UnknownCodeError)
            raise SourceRowError(where, column, str(error), unknown_code=unknown) from error
    return values


@functools.cache
def _source_fields(cls: type) -> Mapping[str, tuple[str, Resolved]]:
    """Field name -> (its source column, its resolved type), once per class.

    ``typing.get_type_hints`` evaluates every annotation of the class and its
    bases on each call: per row it was most of the cost of reading a DICOM
    header's declared fields.
    """
    hints = typing.get_type_hints(cls)
    return MappingProxyType(
        {
            f.name: (f.metadata.get(SOURCE) or f.name, resolve(hints[f.name]))
            for f in attrs.fields(cls)
        }
    )


def source_columns(cls: type) -> tuple[str, ...]:
    """The columns `parse_source_row` reads for ``cls``: each field's source, once, in order."""
    return tuple(dict.fromkeys(column for column, _ in _source_fields(cls).values()))


@functools.cache
def _nullable_sources(cls: type) -> frozenset[str]:
    return frozenset(
        column for column, resolved in _source_fields(cls).values() if resolved.nullable
    )


def to_row(*parts: Any) -> dict[str, Any]:
    """Flattens instances and named values into one table row.

    Args:
        *parts: attrs instances (flattened field by field, enums as their
            integer codes) or ``{name: value}`` mappings, in column order.

    Returns:
        The row, keys in column order.
    """
    row: dict[str, Any] = {}
    for part in parts:
        row.update(part if isinstance(part, Mapping) else _ROWS.unstructure(part))
    return row


def from_row(cls: type[T], row: Mapping[str, Any]) -> T:
    """Builds one declared class from the matching columns of a table row."""
    names = {f.name for f in attrs.fields(cast(Any, cls))}
    return _ROWS.structure({k: v for k, v in row.items() if k in names}, cls)
