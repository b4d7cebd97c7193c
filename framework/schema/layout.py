"""The layout contract: what a data set's layout module (`Dataset.layout`) provides.

A layout module is a plain module of functions and constants. `Layout` types
what every one defines; `RowParser` adds the optional ``parse_label_row``
(without it, label rows are read as declared); `TablesLayout` the optional
per-image tables (metadata, split) joined in on each image's path; and
`GroupLayout` is what a module whose labels come per group of images
defines (``LABELS_PER = "study"`` as MIMIC-CXR-JPG 2.x, ``"patient"``...).
`check_layout` holds a module to its protocol when codegen runs, so that a
missing or misshapen piece is one line then, not an AttributeError mid-run;
the generated ``ingest.py`` assigns the module to the same protocol, so
that mypy checks it too.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from datathon_etl.framework.schema.ir import DatasetIR

if TYPE_CHECKING:
    from datathon_etl.framework.ingest.spec import ImageTable

__all__ = ["GroupLayout", "Layout", "LayoutKind", "RowParser", "TablesLayout", "check_layout"]


class Layout(Protocol):
    """What every layout module defines: paths <-> keys, and the TFRecord folders."""

    def parse_path(self, path: str, /) -> Any:
        """An image's path -> its key; raises ValueError for a path out of the layout.

        The path may be a tar member's name, a file's relative path or a CSV's
        path cell, with or without a leading folder.
        """
        ...

    def format_path(self, key: Any, /) -> str:
        """A key -> its canonical relative path (the tables' ``path``, the JPG tree's)."""
        ...

    def partition(self, key: Any, /) -> str:
        """A key -> its TFRecord folder (``train/frontal``), one of `PARTITIONS`."""
        ...

    @property
    def PARTITIONS(self) -> tuple[str, ...]:
        """Every folder `partition` returns (each gets shards, empty ones too)."""
        ...


class RowParser(Layout, Protocol):
    """A layout that parses its label rows itself (checks across columns)."""

    def parse_label_row(self, row: Mapping[str, str | None], where: str, /) -> tuple[Any, Any]:
        """A CSV row and ``file:line N`` -> (key, labels); raises ValueError.

        Per group: -> (group, labels). A bad cell raises `SourceRowError`.
        """
        ...


class TablesLayout(Layout, Protocol):
    """A layout with per-image tables (`TABLES`: metadata, split) joined in on each path.

    See `datathon_etl.framework.ingest.spec.ImageTables` for what each piece does.
    """

    def image_key(self, key: Any, /, *values: Any) -> Any:
        """(the key so far, each table's value, in `TABLES` order) -> the full key.

        The key so far is the label row's (labels per image) or the path's
        partial key (labels per group, `GroupLayout.ImagePath`).
        """
        ...

    def row_key(self, row: Mapping[str, str | None], /) -> str:
        """A row's join key from its id cells alone (a path, a group); raises ValueError."""
        ...

    @property
    def TABLES(self) -> tuple[ImageTable, ...]:
        """The per-image tables (name, columns, row parser, reason if missing)."""
        ...


class GroupLayout(TablesLayout, Protocol):
    """Labels per group (``LABELS_PER = "study"``, ``"patient"``), with tables per image (`TABLES`).

    Label rows are read as the labels class declares, keyed by ``row_key``,
    unless the module defines ``parse_label_row`` (`RowParser`).

    See `datathon_etl.framework.ingest.spec.GroupLabels` for what each piece does.
    """

    def group_of(self, key: Any, /) -> str:
        """A key -> its group (its study, its patient), as the label rows are keyed.

        A label row's group is ``row_key(row)``, or what ``parse_label_row``
        returns where the module defines one (`RowParser`).
        """
        ...

    # Constants, read-only (a module's tuple of two names is a tuple of names).
    @property
    def LABELS_PER(self) -> str:
        """The group's name (``"study"``, ``"patient"``): it names the group in details."""
        ...

    @property
    def LABEL_KEY_COLUMNS(self) -> tuple[str, ...]:
        """The label CSVs' id columns (``subject_id``, ``study_id``)."""
        ...

    @property
    def LABEL_SOURCES(self) -> tuple[str, ...]:
        """The label files' names' ends, the default first (``chexpert``, ``negbio``)."""
        ...

    @property
    def NO_LABELS(self) -> Any:
        """The labels of an image whose group has no label row."""
        ...

    @property
    def ImagePath(self) -> type[Any]:
        """The attrs class `parse_path` returns (the path's part of the key)."""
        ...


@attrs.frozen
class LayoutKind:
    """Which protocol a layout module follows, as codegen writes its ``ingest.py`` for it.

    Attributes:
        labels_per: ``"image"``, or the group labels come per (`GroupLayout`).
        parses_rows: It defines ``parse_label_row`` (`RowParser`).
        has_tables: It defines ``TABLES`` (`TablesLayout`; always per group).
    """

    labels_per: str
    parses_rows: bool
    has_tables: bool

    @property
    def per_group(self) -> bool:
        """Labels come per group of images."""
        return self.labels_per != "image"

    @property
    def protocols(self) -> tuple[type, ...]:
        """Every protocol the module follows, the most specific last."""
        return (
            Layout,
            *([RowParser] if self.parses_rows else []),
            *([TablesLayout] if self.has_tables or self.per_group else []),
            *([GroupLayout] if self.per_group else []),
        )

    @property
    def protocol(self) -> type:
        """The protocol the generated ``ingest.py`` types the module by."""
        return self.protocols[-1]


def _members(protocols: tuple[type, ...]) -> tuple[dict[str, type], list[str]]:
    """The protocols' (functions -> the protocol declaring each, constants), in order."""
    functions: dict[str, type] = {}
    constants: list[str] = []
    for protocol in protocols:
        for name, value in vars(protocol).items():
            if isinstance(value, property):
                constants.append(name)
            elif inspect.isfunction(value) and not name.startswith("_"):
                functions[name] = protocol
    return functions, constants


def _arguments(function: Any, module: Any) -> list[str]:
    """The arguments a protocol's function takes: ``*values`` is one per table (`TABLES`)."""
    wanted: list[str] = []
    for parameter in list(inspect.signature(function).parameters.values())[1:]:
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            wanted += [f"{parameter.name}[{i}]" for i in range(len(module.TABLES))]
        else:
            wanted.append(parameter.name)
    return wanted


def _check_tables(layout: str, tables: Any) -> None:
    """Each table has a name of its own and a way to read its rows."""
    if not isinstance(tables, tuple):
        raise ValueError(f"{layout}: TABLES must be a tuple of ImageTable")
    names: set[str] = set()
    for table in tables:
        name = getattr(table, "name", None)
        if not isinstance(name, str) or not hasattr(table, "parse_row"):
            raise ValueError(f"{layout}: TABLES must be a tuple of ImageTable, not {table!r}")
        if name in names:
            raise ValueError(f"{layout}: two tables are named {name!r}")
        names.add(name)
        if table.parse_row is None and not attrs.has(table.row_type):
            raise ValueError(
                f"{layout}: table {name!r} has no parse_row and no attrs row class "
                "(see ImageTable.declared)"
            )


def check_layout(ir: DatasetIR) -> LayoutKind:
    """Imports a data set's layout module and checks it against its protocol.

    Args:
        ir: The data set (its ``layout`` is set).

    Returns:
        Which protocol it follows.

    Raises:
        ValueError: One line: the names it lacks, a function that does not
            take the protocol's arguments, a constant of the wrong shape, or
            a declaration the layout cannot serve (split lists per group).
    """
    assert ir.layout is not None
    module = importlib.import_module(ir.layout)
    per = getattr(module, "LABELS_PER", "image")
    if not (isinstance(per, str) and re.fullmatch(r"[a-z][a-z0-9_]*", per)):
        raise ValueError(
            f"{ir.layout}: LABELS_PER must be 'image' or a group's name in lower case "
            f"('study', 'patient'), not {per!r}"
        )
    kind = LayoutKind(per, hasattr(module, "parse_label_row"), hasattr(module, "TABLES"))
    functions, constants = _members(kind.protocols)
    missing = [n for n in (*functions, *constants) if not hasattr(module, n)]
    if missing:
        raise ValueError(f"{ir.layout}: the layout module lacks {', '.join(missing)}")
    _check_tables(ir.layout, getattr(module, "TABLES", ()))
    for name, protocol in functions.items():
        wanted = _arguments(getattr(protocol, name), module)
        found = getattr(module, name)
        try:
            inspect.signature(found).bind(*wanted)
        except (TypeError, ValueError):
            shown = ", ".join(wanted)
            raise ValueError(
                f"{ir.layout}: {name} must take ({shown}) (see {protocol.__name__})"
            ) from None
    for name in constants:
        value = getattr(module, name)
        if (
            name.isupper()
            and name.endswith(("PARTITIONS", "COLUMNS", "SOURCES"))
            and not (
                isinstance(value, tuple) and value and all(isinstance(v, str) and v for v in value)
            )
        ):
            raise ValueError(f"{ir.layout}: {name} must be a non-empty tuple of names")
    if kind.per_group and ir.split_lists:
        raise ValueError(f"{ir.layout}: split_lists are for labels per image, not per {per}")
    return kind
