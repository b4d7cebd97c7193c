"""`datathon-etl mimic_cxr_jpg ingest --help`: the generic command, given ``dataset.json`` and the layout; generated, DO NOT EDIT."""

from __future__ import annotations

import datathon_etl.datasets.mimic_cxr_jpg.parsing as _layout
from datathon_etl.framework.cli import exit_process
from datathon_etl.framework.ingest.package import command
from datathon_etl.framework.schema.layout import GroupLayout

layout: GroupLayout = _layout  # the contract, checked by mypy (and by codegen)
SPEC, main = command(__package__, layout)

if __name__ == "__main__":
    exit_process(main())
