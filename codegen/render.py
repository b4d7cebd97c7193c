"""Renders a dataset's IR into its generated files, in memory."""

from __future__ import annotations

import json
from typing import Any

import attrs
import jinja2

from datathon_etl.framework.schema import Column, DatasetIR, Table
from datathon_etl.framework.schema.layout import check_layout
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


@attrs.frozen
class _NamedTable:
    constant: str
    table: Table


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


def _feature_spec(column: Column) -> str:
    spec = FeatureSpec.of(column.name, column.type, nullable=column.nullable)
    args = [f'"{spec.name}"', f'"{spec.kind}"']
    args += [f"{flag}=True" for flag in ("text", "boolean", "nullable") if getattr(spec, flag)]
    return f"FeatureSpec({', '.join(args)})"


def _class_imports(ir: DatasetIR) -> list[str]:
    by_module: dict[str, set[str]] = {}
    for ref in (ir.key, ir.labels):
        by_module.setdefault(ref.module, set()).add(ref.name)
    return [f"from {m} import {', '.join(sorted(names))}" for m, names in sorted(by_module.items())]


def _label_codes(column: Column) -> str | None:
    """The ``LabelCodes(...)`` of a label evaluate can score, or None.

    The rule (see ``framework/evaluate/policy.py``): for a coded label, the
    code named ``positive`` is positive, ``uncertain`` is uncertain and every
    other code negative; for a ``bool`` label, true is positive.
    """
    if column.enum is not None:
        codes = column.enum.codes
        positive = [c.value for c in codes if c.name == "positive"]
        if not positive:
            return None
        uncertain = [c.value for c in codes if c.name == "uncertain"]
        negative = [c.value for c in codes if c.value not in positive + uncertain]
        args = [f'"{column.name}"', f"positive={_tuple(positive)}", f"negative={_tuple(negative)}"]
        if uncertain:
            args.append(f"uncertain={_tuple(uncertain)}")
        return f"LabelCodes({', '.join(args)})"
    if column.type.name == "bool":
        return f'LabelCodes("{column.name}", positive=(True,), negative=(False,))'
    return None


def _tuple(values: list[int]) -> str:
    return "(" + ", ".join(map(str, values)) + ("," if len(values) == 1 else "") + ")"


def _codes(column: Column) -> str:
    """A coded column's ``codes`` metadata as a Python literal (see `codes_metadata`)."""
    assert column.enum is not None
    return repr(codes_metadata({c.value: c.name for c in column.enum.codes}))


def _python_string(text: str) -> str:
    # JSON string literals are valid Python with double quotes, as ruff formats them.
    return json.dumps(text, ensure_ascii=False)


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
    tables = [
        _NamedTable("LABELS", ir.labels_table),
        _NamedTable("PREDICTIONS", ir.predictions_table),
    ]
    # Only targets are model outputs, so only targets are scored.
    label_codes = {c.name: _label_codes(c) for c in ir.targets}
    evaluated_enums = {
        (c.enum.module, c.enum.name)
        for c in ir.targets
        if c.enum is not None and label_codes[c.name]
    }
    context = {
        "ir": ir,
        "tables": tables,
        "ids": (*ir.key.columns, ir.path),
        "describe": describe,
        "pyrepr": _python_string,
        "codes": _codes,
        "feature_spec": _feature_spec,
        "class_imports": _class_imports(ir),
        "label_codes": [codes for codes in label_codes.values() if codes],
        "evaluated_enums": [e for e in ir.enums if (e.module, e.name) in evaluated_enums],
        "not_evaluated": [f"`{name}`" for name, codes in label_codes.items() if not codes],
        "labels_per_study": kind is not None and kind.per_study,
        "layout_parses_rows": kind is not None and kind.parses_rows,
        "layout_protocol": kind.protocol.__name__ if kind else None,
        "key_sources": [c for c in ir.key.columns if c.source],
        # A multi-valued column feeds several labels; the CSV needs it once.
        # Header (dicom=) columns are read from each image, not from the CSV.
        "label_sources": list(
            dict.fromkeys(c.source or c.name for c in ir.labels.columns if not c.dicom)
        ),
        "metadata_labels": [c for c in ir.labels.columns if not c.target],
        "dicom_columns": [c for c in (*ir.key.columns, *ir.labels.columns) if c.dicom],
        "package": package,
        "builtin": package.rpartition(".")[0] == BUILTIN_PACKAGE,
        "commands": [*(["ingest"] if ir.layout is not None else []), "infer", "evaluate"],
    }
    files = {
        "__init__.py": _ENV.get_template("package_init.py.j2").render(context),
        "arrow_schema.py": _ENV.get_template("arrow_schema.py.j2").render(context),
        "features.py": _ENV.get_template("features.py.j2").render(context),
        "rows.py": _ENV.get_template("rows.py.j2").render(context),
        "DATA_DICTIONARY.md": _ENV.get_template("data_dictionary.md.j2").render(context),
        "infer.py": _ENV.get_template("infer.py.j2").render(context),
        "evaluate.py": _ENV.get_template("evaluate.py.j2").render(context),
        "labels_schema.json": _json(bigquery_schema(ir.labels_table)),
        "predictions_schema.json": _json(bigquery_schema(ir.predictions_table)),
    }
    if ir.layout is not None:
        files["ingest.py"] = _ENV.get_template("ingest.py.j2").render(context)
    return dict(sorted(files.items()))
