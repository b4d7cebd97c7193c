"""The patient leakage report: subjects written in more than one split.

Any data set whose declaration names its patient and split key columns
(`Dataset.patient`, `Dataset.split`) is checked once its run is done, by the
data card's own query (`card.stats.leakage`) on the labels table the run
wrote (DuckDB or BigQuery): the pipeline holds nothing for it. The subjects
found are listed in ``<output_dir>/_leakage.json``, said in one line and
counted in the manifest. Nothing is dropped: which split is right is the
organiser's call.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

import attrs
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from datathon_etl.framework.card import stats
from datathon_etl.framework.card.tables import open_table
from datathon_etl.framework.tables import TableSpec

__all__ = ["LEAKAGE_FILE", "LeakageCheck", "report_leakage"]

LEAKAGE_FILE = "_leakage.json"
"""The subjects found in more than one split, under ``--output_dir``."""


@attrs.frozen
class LeakageCheck:
    """The declared patient and split columns of the labels table.

    Attributes:
        patient: The column naming the patient.
        split: The column naming the split.
        split_names: Each split code's name (``{0: "train"}``); empty for a
            split column that is not coded.
    """

    patient: str
    split: str
    split_names: Mapping[int, str] = attrs.field(factory=dict)

    def name(self, split: Any) -> str:
        """A stored split value's name."""
        return self.split_names.get(split, str(split))


def report_leakage(
    check: LeakageCheck, table: TableSpec, output_dir: str, prog: str
) -> dict[str, Any]:
    """Writes ``_leakage.json`` from the written table, says any leak; returns manifest parameters.

    A table that cannot be read is one line on stderr and no report, as a
    data card that cannot be made: the run's outputs stand.

    Args:
        check: The columns to check.
        table: The labels table the run wrote.
        output_dir: The run's ``--output_dir``.
        prog: The command's name, for the messages.
    """
    try:
        with open_table(table) as opened:
            found = stats.leakage(opened, patient=check.patient, split=check.split, limit=None)
    except Exception as e:  # DuckDB's, BigQuery's or a missing file's: the report only
        print(f"{prog}: no leakage report: {table}: {e}", file=sys.stderr, flush=True)
        return {"subjects_in_several_splits": None, "leakage_report": None}
    leaks = [
        {"subject": str(patient), "splits": sorted(check.name(s) for s in splits)}
        for patient, splits in found.named
    ]
    report = {"subjects_in_several_splits": found.patients, "subjects": leaks}
    leakage_uri = f"{output_dir}/{LEAKAGE_FILE}"
    with FileSystems.create(leakage_uri, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write((json.dumps(report, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    if leaks:
        shown = ", ".join(f"{leak['subject']} ({'/'.join(leak['splits'])})" for leak in leaks[:5])
        more = f" and {len(leaks) - 5} more" if len(leaks) > 5 else ""
        print(
            f"{prog}: LEAKAGE: {len(leaks)} subject(s) in more than one split: {shown}{more}; "
            f"see {leakage_uri}",
            flush=True,
        )
    return {"subjects_in_several_splits": found.patients, "leakage_report": leakage_uri}
