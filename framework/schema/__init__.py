"""Declaring datasets once: fields, the type table, the IR and conversions."""

from datathon_etl.framework.schema.convert import (
    SourceCoded,
    SourceRowError,
    UnknownCodeError,
    from_row,
    parse_source_fields,
    parse_source_row,
    source_columns,
    to_row,
)
from datathon_etl.framework.schema.dataset import Dataset
from datathon_etl.framework.schema.fields import MultiValued, column
from datathon_etl.framework.schema.ir import (
    ClassRef,
    Code,
    Column,
    DatasetIR,
    EnumRef,
    SchemaError,
    Table,
    read_dataset,
)
from datathon_etl.framework.schema.types import SCALAR_TYPES, ScalarType, UnsupportedTypeError

__all__ = [
    "SCALAR_TYPES",
    "ClassRef",
    "Code",
    "Column",
    "Dataset",
    "DatasetIR",
    "EnumRef",
    "MultiValued",
    "ScalarType",
    "SchemaError",
    "SourceCoded",
    "SourceRowError",
    "Table",
    "UnknownCodeError",
    "UnsupportedTypeError",
    "column",
    "from_row",
    "parse_source_fields",
    "parse_source_row",
    "read_dataset",
    "source_columns",
    "to_row",
]
