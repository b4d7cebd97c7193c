"""The frozen intermediate representation every generator and pipeline reads.

`read_dataset` walks a `Dataset` declaration once; after that nothing looks at
the attrs classes' internals again.
"""

from __future__ import annotations

import enum
import typing
from typing import Any

import attrs

from datathon_etl.framework.schema.dataset import Dataset
from datathon_etl.framework.schema.fields import (
    DESCRIPTION,
    DICOM,
    DICOM_VALUE,
    FLAGS,
    METADATA_ONLY,
    SOURCE,
    MultiValued,
)
from datathon_etl.framework.schema.types import SCALAR_TYPES, ScalarType, resolve

__all__ = [
    "PREDICTION_DESCRIPTION",
    "ClassRef",
    "Code",
    "Column",
    "DatasetIR",
    "EnumRef",
    "SchemaError",
    "Table",
    "read_dataset",
]

PREDICTION_DESCRIPTION = (
    "The model's predicted logit for the presence of this label: -infinity => negative or "
    "not mentioned, +infinity => positive. Convert it to a probability with the logistic "
    "function, in standard SQL: `0.5 * (TANH(0.5 * x) + 1)`."
)


class SchemaError(ValueError):
    """A dataset declaration that cannot be turned into tables."""


@attrs.frozen
class Code:
    """One coded value of an enum column."""

    value: int
    name: str


@attrs.frozen
class EnumRef:
    """An `enum.IntEnum` by import path, with its codes in value order."""

    module: str
    name: str
    codes: tuple[Code, ...]


@attrs.frozen
class Column:
    """One column of a table (and, for examples, one TFRecord feature).

    Attributes:
        name: Column and feature name.
        type: Storage types from the type table.
        description: Human description.
        nullable: Whether the value may be absent.
        source: Name of the column in the source files, if any.
        enum: For coded values, the enum and its codes.
        target: Whether it is a model output (a label declared a target);
            False for key columns, ``path`` and metadata labels.
        dicom: The DICOM header attribute (keyword) it is read from, if any.
        dicom_value: Which of that attribute's values it holds (0: the
            first); None for all of them, as one text.
        flags: For a `MultiValued` column's label: the value it flags
            (true when its `source` cell lists it).
    """

    name: str
    type: ScalarType
    description: str
    nullable: bool = False
    source: str | None = None
    enum: EnumRef | None = None
    target: bool = False
    dicom: str | None = None
    dicom_value: int | None = None
    flags: str | None = None

    @property
    def python_type(self) -> str:
        """The annotation to write in generated code (``int``, ``View``, ...)."""
        base = self.enum.name if self.enum else self.type.name
        return f"{base} | None" if self.nullable else base


@attrs.frozen
class ClassRef:
    """A declared attrs class by import path, with its columns in order."""

    module: str
    name: str
    columns: tuple[Column, ...]


@attrs.frozen
class Table:
    """A table's name, description and ordered columns."""

    name: str
    description: str
    columns: tuple[Column, ...]


@attrs.frozen
class DatasetIR:
    """Everything generators and pipelines need to know about a dataset.

    Attributes:
        name: The dataset's identifier.
        description: One paragraph about the data set.
        module: Import path of the module that declares ``DATASET``.
        image_feature: TFRecord feature holding the encoded image.
        key: The key class and its columns.
        labels: The label class and its columns (targets and metadata).
        targets: The label columns that are model outputs, in order.
        path: The ``path`` column (the image's relative path).
        path_source: The label CSV's column holding the image's path.
        labels_table: Key columns, ``path``, then label columns.
        predictions_table: Key columns, ``path``, then one logit per target.
        features: TFRecord features after the image: ``path``, key, labels.
        enums: Every enum used by a column, in first-use order.
        layout: Import path of the dataset's layout module, if any.
        split: The key column holding the split (coded), if declared.
        patient: The key column naming the patient, if declared.
        study: The key column naming the study, if declared.
        view: The key column holding the view (coded), if declared.
        split_lists: The split's list files: (file name, the split's code).
    """

    name: str
    description: str
    module: str
    image_feature: str
    key: ClassRef
    labels: ClassRef
    targets: tuple[Column, ...]
    path: Column
    path_source: str
    labels_table: Table
    predictions_table: Table
    features: tuple[Column, ...]
    enums: tuple[EnumRef, ...]
    layout: str | None = None
    split: Column | None = None
    patient: Column | None = None
    study: Column | None = None
    view: Column | None = None
    split_lists: tuple[tuple[str, Code], ...] = ()


def read_dataset(dataset: Dataset, module: str) -> DatasetIR:
    """Reads a dataset declaration into its intermediate representation.

    Args:
        dataset: The declaration.
        module: Import path of the module that exports it.

    Returns:
        The frozen IR.

    Raises:
        SchemaError: A class is not an attrs class, a field lacks a
            description, a type is unsupported, column names collide, a key
            field is declared ``target=False``, no label is a target, or a
            multi-valued column is declared inconsistently (a flag that is
            not a ``bool`` label, a value flagged twice, two declarations
            or a plain label reading the same column), or split lists
            name values of another enum than the split's, or no split.
    """
    key = _read_class(dataset.name, dataset.key, labels=False)
    labels = _read_class(dataset.name, dataset.labels, labels=True)
    _check_multi_valued(dataset.name, dataset.labels)
    targets = tuple(c for c in labels.columns if c.target)
    if not targets:
        raise SchemaError(f"{dataset.name}: no label is a target; a model would output nothing")
    path = Column("path", SCALAR_TYPES[str], dataset.path_description)
    ids = (*key.columns, path)
    labels_table = Table(
        f"{dataset.name}_labels", f"One row per image of {dataset.name}.", (*ids, *labels.columns)
    )
    predictions = tuple(
        Column(c.name, SCALAR_TYPES[float], PREDICTION_DESCRIPTION) for c in targets
    )
    predictions_table = Table(
        f"{dataset.name}_predictions",
        f"One row per image of {dataset.name}: a model's logit per target label.",
        (*ids, *predictions),
    )
    names = [dataset.image_feature, *(c.name for c in labels_table.columns)]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SchemaError(f"{dataset.name}: column names used twice: {', '.join(duplicates)}")
    enums: dict[tuple[str, str], EnumRef] = {}
    for c in labels_table.columns:
        if c.enum is not None:
            enums.setdefault((c.enum.module, c.enum.name), c.enum)
    split = _key_column(dataset.name, key, dataset.split, "split", coded=True)
    return DatasetIR(
        name=dataset.name,
        description=dataset.description,
        module=module,
        image_feature=dataset.image_feature,
        key=key,
        labels=labels,
        targets=targets,
        path=path,
        path_source=dataset.path_source,
        labels_table=labels_table,
        predictions_table=predictions_table,
        features=(path, *key.columns, *labels.columns),
        enums=tuple(enums.values()),
        layout=dataset.layout,
        split=split,
        patient=_key_column(dataset.name, key, dataset.patient, "patient", coded=False),
        study=_key_column(dataset.name, key, dataset.study, "study", coded=False),
        view=_key_column(dataset.name, key, dataset.view, "view", coded=True),
        split_lists=_split_lists(dataset, split),
    )


def _split_lists(dataset: Dataset, split: Column | None) -> tuple[tuple[str, Code], ...]:
    """The split's list files and the code of each, checked against the split's enum."""
    if not dataset.split_lists:
        return ()
    if split is None or split.enum is None:
        raise SchemaError(f"{dataset.name}: split_lists need split= (the key field they set)")
    expected = (split.enum.module, split.enum.name)
    lists = []
    for name, value in dataset.split_lists:
        if (type(value).__module__, type(value).__qualname__) != expected:
            raise SchemaError(
                f"{dataset.name}: split_lists[{name!r}] = {value!r} is not a {split.enum.name}"
            )
        lists.append((name, Code(int(value), value.name.lower())))
    return tuple(lists)


def _key_column(
    dataset: str, key: ClassRef, name: str | None, role: str, *, coded: bool
) -> Column | None:
    if name is None:
        return None
    found = {c.name: c for c in key.columns}.get(name)
    if found is None or (coded and found.enum is None):
        kind = "a coded (enum) key field" if coded else "a key field"
        raise SchemaError(f"{dataset}: {role}={name!r} must name {kind}")
    return found


def _read_class(dataset: str, cls: type, *, labels: bool) -> ClassRef:
    if not attrs.has(cls):
        raise SchemaError(f"{dataset}: {cls!r} is not an attrs class")
    hints = typing.get_type_hints(cls)
    columns = []
    for field in attrs.fields(cls):
        where = f"{dataset}: {cls.__name__}.{field.name}"
        description = field.metadata.get(DESCRIPTION)
        if not description:
            raise SchemaError(f"{where}: declare it with column(description=...)")
        try:
            resolved = resolve(hints[field.name])
        except TypeError as error:
            raise SchemaError(f"{where}: {error}") from error
        metadata_only = bool(field.metadata.get(METADATA_ONLY))
        if metadata_only and not labels:
            raise SchemaError(f"{where}: key fields are never targets; drop target=False")
        dicom = field.metadata.get(DICOM)
        dicom_value = field.metadata.get(DICOM_VALUE)
        if dicom is not None:
            _check_dicom(where, field, dicom, dicom_value)
        elif dicom_value is not None:
            raise SchemaError(f"{where}: dicom_value= goes with dicom=")
        flags = field.metadata.get(FLAGS)
        if flags and not (labels and resolved.python is bool and not resolved.nullable):
            raise SchemaError(f"{where}: a flag of a multi-valued column must be a bool label")
        columns.append(
            Column(
                name=field.name,
                type=resolved.scalar,
                description=description,
                nullable=resolved.nullable,
                source=field.metadata.get(SOURCE),
                enum=_enum_ref(resolved.enum) if resolved.enum else None,
                target=labels and not metadata_only,
                dicom=dicom,
                dicom_value=dicom_value,
                flags=flags[1] if flags else None,
            )
        )
    return ClassRef(cls.__module__, cls.__qualname__, tuple(columns))


# Value representations whose values are not text or numbers: no column holds them.
_NOT_COLUMNS = frozenset({"SQ", "OB", "OD", "OF", "OL", "OV", "OW", "UN"})


def _check_dicom(where: str, field: attrs.Attribute[Any], keyword: str, value: int | None) -> None:
    """A ``dicom=`` column names a known attribute of text or numbers, and has a default.

    A ``dicom_value=`` names one value of an attribute that may hold several.
    """
    from pydicom import datadict

    if field.metadata.get(SOURCE):
        raise SchemaError(f"{where}: give source= or dicom=, not both")
    tag = datadict.tag_for_keyword(keyword)
    if tag is None:
        raise SchemaError(f"{where}: dicom={keyword!r} is not a DICOM attribute keyword")
    vr = datadict.dictionary_VR(tag)
    if vr in _NOT_COLUMNS:
        raise SchemaError(f"{where}: dicom={keyword!r} holds {vr} values, which no column holds")
    if value is not None:
        multiplicity = datadict.dictionary_VM(tag)
        most = multiplicity.split("-")[-1]
        if not isinstance(value, int) or value < 0:
            raise SchemaError(f"{where}: dicom_value={value!r} is not a value's index (0, 1, ...)")
        if most.isdigit() and value >= int(most):
            raise SchemaError(
                f"{where}: dicom_value={value} but {keyword} holds at most {most} value(s)"
                f" (value multiplicity {multiplicity})"
            )
    if field.default is attrs.NOTHING:
        raise SchemaError(
            f"{where}: dicom={keyword!r} needs a default= (the value until the header is read)"
        )


def _check_multi_valued(dataset: str, cls: type) -> None:
    """One declaration per multi-valued column, each value flagged once, no plain reader."""
    declared: dict[str, MultiValued] = {}
    flagged: set[tuple[str, str]] = set()
    for field in attrs.fields(cls):
        if flags := field.metadata.get(FLAGS):
            multi, value = flags
            where = f"{dataset}: {cls.__name__}.{field.name}"
            if declared.setdefault(multi.source, multi) != multi:
                raise SchemaError(f"{where}: {multi.source!r} is declared multi-valued twice")
            if (multi.source, value) in flagged:
                raise SchemaError(f"{where}: {value!r} of {multi.source!r} is flagged twice")
            flagged.add((multi.source, value))
    for field in attrs.fields(cls):
        source = field.metadata.get(SOURCE) or field.name
        if source in declared and not field.metadata.get(FLAGS):
            raise SchemaError(
                f"{dataset}: {cls.__name__}.{field.name}: {source!r} is multi-valued; "
                "declare its values with flag()"
            )


def _enum_ref(cls: type[enum.IntEnum]) -> EnumRef:
    codes = tuple(Code(int(m.value), m.name.lower()) for m in sorted(cls, key=int))
    return EnumRef(cls.__module__, cls.__qualname__, codes)
