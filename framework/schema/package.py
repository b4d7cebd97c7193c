"""A generated package's declarations, loaded once per process.

Codegen writes what differs between data sets as data beside a few lines of
Python (``generated/<dataset>/``): ``dataset.json`` (the key and labels
classes, the row mappers' columns, both tables' Arrow schemas, the TFRecord
feature spec, what ``evaluate`` scores and what ``ingest`` reads) and the
BigQuery JSON schemas. `load_package` reads them and makes the objects the
generated modules export and the commands run with. The package's files are
the only input: nothing a team or a data file supplies is read here, and
the only modules imported are those its own ``dataset.json`` names.
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from typing import Any, Protocol, TypeVar

import attrs
import pyarrow as pa

from datathon_etl.framework.schema.rows import RowMappers
from datathon_etl.framework.schema.types import SCALAR_TYPES
from datathon_etl.framework.tfrecords.examples import ExampleFeatures
from datathon_etl.framework.tfrecords.features import FeatureSpec

__all__ = ["DECLARATION_FILE", "DatasetPackage", "Main", "entry_point", "load_package"]

DECLARATION_FILE = "dataset.json"
"""The file of a generated package that declares its data set."""

_ARROW_TYPES = {scalar.name: getattr(pa, scalar.arrow)() for scalar in SCALAR_TYPES.values()}


def arrow_schema(table: Mapping[str, Any]) -> pa.Schema:
    """Returns the Arrow schema a table's declaration describes.

    Args:
        table: ``{"name": ..., "columns": [{"name", "type", "nullable",
            "metadata"}, ...]}``; ``type`` names a declared Python type
            (`SCALAR_TYPES`), ``metadata`` is the field's (its description,
            a coded column's codes).

    Raises:
        ValueError: A column's type is not a declared type's name.
    """
    fields = []
    for column in table["columns"]:
        if column["type"] not in _ARROW_TYPES:
            raise ValueError(f"{table['name']}.{column['name']}: unknown type {column['type']!r}")
        arrow_type = _ARROW_TYPES[column["type"]]
        fields.append(pa.field(column["name"], arrow_type, column["nullable"], column["metadata"]))
    return pa.schema(fields, metadata={"table": table["name"]})


def _class(reference: str) -> type:
    """``module:Qualified.Name`` -> the class."""
    module, _, name = reference.partition(":")
    found = functools.reduce(getattr, name.split("."), importlib.import_module(module))
    if not isinstance(found, type):
        raise TypeError(f"{reference}: not a class")
    return found


@attrs.frozen
class DatasetPackage:
    """One data set's generated declarations, as objects.

    Attributes:
        package: The generated package's import path.
        name: The data set's name.
        declaration: Import path of the module declaring it (its ``DATASET``).
        features: Examples <-> TFRecord features (its spec and classes).
        rows: The row mappers: id, label and target columns.
        labels_schema: Arrow schema of the labels table.
        predictions_schema: Arrow schema of the predictions table.
        labels_bigquery_schema: BigQuery JSON schema of the labels table.
        predictions_bigquery_schema: Likewise, of the predictions table.
        evaluation: What ``evaluate`` scores (its ``dataset.json`` section).
        ingest: What ``ingest`` reads (its section); None without a layout.
    """

    package: str
    name: str
    declaration: str
    features: ExampleFeatures[Any, Any]
    rows: RowMappers
    labels_schema: pa.Schema
    predictions_schema: pa.Schema
    labels_bigquery_schema: Mapping[str, Any]
    predictions_bigquery_schema: Mapping[str, Any]
    evaluation: Mapping[str, Any]
    ingest: Mapping[str, Any] | None

    @property
    def arrow_schemas(self) -> tuple[pa.Schema, pa.Schema]:
        """(labels, predictions) Arrow schemas."""
        return self.labels_schema, self.predictions_schema

    @classmethod
    def from_files(cls, package: str, files: Mapping[str, str]) -> DatasetPackage:
        """Builds it from the package's JSON files' texts, by file name."""
        declared = json.loads(files[DECLARATION_FILE])
        rows = declared["rows"]
        return cls(
            package=package,
            name=declared["name"],
            declaration=declared["declaration"],
            features=ExampleFeatures(
                _class(declared["key"]),
                _class(declared["labels"]),
                tuple(FeatureSpec(**spec) for spec in declared["features"]),
            ),
            rows=RowMappers(
                declared["name"], tuple(rows["ids"]), tuple(rows["labels"]), tuple(rows["targets"])
            ),
            labels_schema=arrow_schema(declared["tables"]["labels"]),
            predictions_schema=arrow_schema(declared["tables"]["predictions"]),
            labels_bigquery_schema=json.loads(files["labels_schema.json"]),
            predictions_bigquery_schema=json.loads(files["predictions_schema.json"]),
            evaluation=declared["evaluation"],
            ingest=declared.get("ingest"),
        )


@functools.cache
def load_package(package: str | None) -> DatasetPackage:
    """Loads a generated package's declarations (once per process).

    Args:
        package: The generated package's import path (a generated
            module's ``__package__``).
    """
    if not package:
        raise ValueError("load_package: a generated module's __package__ is needed")
    folder = resources.files(package)
    names = (DECLARATION_FILE, "labels_schema.json", "predictions_schema.json")
    return DatasetPackage.from_files(
        package, {name: folder.joinpath(name).read_text("utf-8") for name in names}
    )


class Main(Protocol):
    """A command's ``main(argv) -> exit code``."""

    def __call__(self, argv: Sequence[str] | None = None) -> int:
        """Runs the command on ``argv`` (default: the process's); returns the exit code."""
        ...


S = TypeVar("S")


def entry_point(spec: S, run: Callable[[S, Sequence[str] | None], int]) -> tuple[S, Main]:
    """Binds a data set's spec to a generic command: (the spec, its ``main``)."""

    def main(argv: Sequence[str] | None = None) -> int:
        """Runs the command; returns the exit code."""
        return run(spec, argv)

    return spec, main
