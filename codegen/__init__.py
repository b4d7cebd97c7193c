"""Schema codegen: dataset declarations -> BigQuery, Arrow, TFRecord, row mappers, docs."""

from datathon_etl.codegen.generate import CheckResult, check, load_dataset_ir, render_all, write
from datathon_etl.codegen.render import bigquery_schema, render_dataset

__all__ = [
    "CheckResult",
    "bigquery_schema",
    "check",
    "load_dataset_ir",
    "render_all",
    "render_dataset",
    "write",
]
