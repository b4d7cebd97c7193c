"""Row mappers of mimic_cxr_dicom (``dataset.json``), see `RowMappers`: generated; DO NOT EDIT."""

from __future__ import annotations

from datathon_etl.framework.schema.package import load_package
from datathon_etl.framework.schema.rows import ids_row as ids_row
from datathon_etl.framework.schema.rows import labels_row as labels_row

ROWS = load_package(__package__).rows
ID_COLUMNS, LABEL_COLUMNS, TARGET_COLUMNS = ROWS.id_columns, ROWS.label_columns, ROWS.target_columns
prediction_row = ROWS.prediction_row
