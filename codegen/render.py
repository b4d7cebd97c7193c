"""Renders a dataset's IR into its generated files, in memory."""

from __future__ import annotations

import importlib
import json
from typing import Any

import attrs
import jinja2

from datathon_etl.framework.evaluate.policy import label_codes
from datathon_etl.framework.schema import Column, DatasetIR, Table
from datathon_etl.framework.schema.layout import LayoutKind, check_layout
from datathon_etl.framework.schema.package import DECLARATION_FILE
from datathon_etl.framework.tables.decoded_view import codes_metadata
from datathon_etl.framework.tfrecords import FeatureSpec

__all__ = ["BUILTIN_PACKAGE", "bigquery_schema", "describe", "render_dataset"]

BUILTIN_PACKAGE = "datathon_etl.generated"
"""The package of the built-in data sets' generated modules."""

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("datathon_etl.codegen", "templates"),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    autoescape=False,
)


def describe(column: Column) -> str:
    """Returns a column's description with its codes, as the seed schemas wrote them.

    A flag of a multi-valued column says which value of which column it is.
    """
    if column.flags is not None:
        return f"{column.description} (true when {column.source!r} lists {column.flags!r})"
    if column.enum is None:
        return column.description
    codes = ", ".join(f"{c.value}: {c.name.replace('_', ' ')}" for c in column.enum.codes)
    return f"{column.description} {{{codes}}}"


def bigquery_schema(table: Table) -> dict[str, Any]:
    """Returns a table's BigQuery JSON schema (``{"fields": [...]}``)."""
    fields = []
    for c in table.columns:
        field = {"name": c.name, "type": c.type.bigquery, "description": describe(c)}
        if c.nullable:
            field["mode"] = "NULLABLE"
        fields.append(field)
    return {"fields": fields}


def _table(table: Table) -> dict[str, Any]:
    """A table's Arrow schema as data (see `arrow_schema`): its columns' types and metadata."""
    columns = []
    for c in table.columns:
        metadata = {"description": describe(c)}
        if c.enum is not None:
            metadata["codes"] = codes_metadata({code.value: code.name for code in c.enum.codes})
        columns.append(
            {"name": c.name, "type": c.type.name, "nullable": c.nullable, "metadata": metadata}
        )
    return {"name": table.name, "columns": columns}


def _ingest(ir: DatasetIR, kind: LayoutKind) -> dict[str, Any]:
    """What `ingest_spec` reads besides the layout module."""
    # A multi-valued column feeds several labels; the CSV needs it once.
    # Header (dicom=) columns are read from each image, not from the CSV.
    sources = [c.source or c.name for c in ir.labels.columns if not c.dicom]
    if not kind.per_group:  # per group, the layout's LABEL_KEY_COLUMNS come first
        sources = [ir.path_source, *(c.source for c in ir.key.columns if c.source), *sources]
    declared: dict[str, Any] = {
        "labels_per": kind.labels_per,
        "parses_rows": kind.parses_rows,
        "path_column": ir.path_source,
        "csv_columns": list(dict.fromkeys(sources)),
    }
    if ir.split_lists:
        assert ir.split is not None
        files = [[name, code.value] for name, code in ir.split_lists]
        declared["split_lists"] = {"field": ir.split.name, "files": files}
    return declared


def _declaration(ir: DatasetIR, kind: LayoutKind | None) -> dict[str, Any]:
    """The package's ``dataset.json``: what `load_package` makes its objects of."""
    image = FeatureSpec(ir.image_feature, "bytes_list")
    features = [FeatureSpec.of(c.name, c.type, nullable=c.nullable) for c in ir.features]
    codes = (label_codes(c) for c in ir.targets)
    declared = {
        "name": ir.name,
        "declaration": ir.module,
        "key": f"{ir.key.module}:{ir.key.name}",
        "labels": f"{ir.labels.module}:{ir.labels.name}",
        "rows": {
            "ids": [c.name for c in (*ir.key.columns, ir.path)],
            "labels": [c.name for c in ir.labels.columns],
            "targets": [c.name for c in ir.targets],
        },
        "tables": {"labels": _table(ir.labels_table), "predictions": _table(ir.predictions_table)},
        "features": [attrs.asdict(spec) for spec in (image, *features)],
        "evaluation": {
            "split": ir.split.name if ir.split else None,
            "splits": {c.name: c.value for c in ir.split.enum.codes}
            if ir.split and ir.split.enum
            else {},
            "patient": ir.patient.name if ir.patient else None,
            "labels": [attrs.asdict(c) for c in codes if c is not None],
        },
    }
    if kind is not None:
        declared["ingest"] = _ingest(ir, kind)
    return declared


def _inputs(ir: DatasetIR, kind: LayoutKind | None, csv_columns: list[str]) -> dict[str, Any]:
    """What the data dictionary says ``ingest`` reads: label files, their columns, the tables."""
    inputs: dict[str, Any] = {"label_columns": csv_columns, "labels_per": None, "layout_tables": []}
    if ir.layout is None or kind is None:
        return inputs
    module = importlib.import_module(ir.layout)
    tables = [
        {
            "name": t.name,
            "columns": t.columns,
            "missing": t.missing.value if t.missing is not None else None,
        }
        for t in getattr(module, "TABLES", ())
    ]
    inputs["layout_tables"] = tables
    if kind.per_group:
        inputs["label_columns"] = [*module.LABEL_KEY_COLUMNS, *csv_columns]
        inputs["label_sources"] = module.LABEL_SOURCES
        inputs["labels_per"] = kind.labels_per
    return inputs


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def render_dataset(ir: DatasetIR, package: str | None = None) -> dict[str, str]:
    """Renders every generated file of one dataset.

    Args:
        ir: The dataset's intermediate representation.
        package: The import path of the files' package, for the data
            dictionary's run instructions (default: a built-in data set's,
            ``datathon_etl.generated.<name>``).

    Returns:
        File name (relative to ``generated/<dataset>/``) -> content, sorted.
    """
    package = package or f"{BUILTIN_PACKAGE}.{ir.name}"
    kind = check_layout(ir) if ir.layout is not None else None
    declared = _declaration(ir, kind)
    # Only targets are model outputs, so only targets are scored.
    scored = declared["evaluation"]["labels"]
    scored_names = {codes["column"] for codes in scored}
    context = {
        "ir": ir,
        "tables": (ir.labels_table, ir.predictions_table),
        "describe": describe,
        "scored": scored,
        "not_evaluated": [f"`{c.name}`" for c in ir.targets if c.name not in scored_names],
        "layout_protocol": kind.protocol.__name__ if kind else None,
        **_inputs(ir, kind, declared.get("ingest", {}).get("csv_columns", [])),
        "metadata_labels": [c for c in ir.labels.columns if not c.target],
        "dicom_columns": [c for c in (*ir.key.columns, *ir.labels.columns) if c.dicom],
        "package": package,
        "builtin": package.rpartition(".")[0] == BUILTIN_PACKAGE,
        "commands": [*(["ingest"] if ir.layout is not None else []), "infer", "evaluate"],
    }
    modules = ["arrow_schema", "features", "rows", "infer", "evaluate"]
    if ir.layout is not None:
        modules.append("ingest")
    files = {f"{m}.py": _ENV.get_template(f"{m}.py.j2").render(context) for m in modules}
    files["__init__.py"] = _ENV.get_template("package_init.py.j2").render(context)
    files["DATA_DICTIONARY.md"] = _ENV.get_template("data_dictionary.md.j2").render(context)
    files[DECLARATION_FILE] = _json(declared)
    files["labels_schema.json"] = _json(bigquery_schema(ir.labels_table))
    files["predictions_schema.json"] = _json(bigquery_schema(ir.predictions_table))
    return dict(sorted(files.items()))
