"""`datathon-etl mimic_cxr evaluate --help`: the generic command, given ``dataset.json``; generated, DO NOT EDIT."""

from __future__ import annotations

from datathon_etl.framework.cli import exit_process
from datathon_etl.framework.evaluate.command import command

SPEC, main = command(__package__)

if __name__ == "__main__":
    exit_process(main())
