"""The patient leakage check: subjects written in more than one split.

Any data set whose declaration names its patient and split key columns
(`Dataset.patient`, `Dataset.split`) is checked: the written examples'
(subject, split) pairs are grouped by subject, each subject found in several
splits is a run note, and the run lists them in ``<output_dir>/_leakage.json``
and the manifest. Nothing is dropped: which split is right is the
organiser's call.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam
import attrs
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

__all__ = ["LEAKAGE_FILE", "LEAKAGE_NOTE", "Leakage", "SubjectSplit", "report_leakage"]

LEAKAGE_NOTE = "subject_in_several_splits"
"""Note kind: one subject written in more than one split (``subject``, ``splits``)."""
LEAKAGE_FILE = "_leakage.json"
"""The subjects found in more than one split, under ``--output_dir``."""


@attrs.frozen
class SubjectSplit:
    """Key -> (subject, split), from the declared patient and split key fields.

    Attributes:
        patient: The key field naming the patient.
        split: The key field naming the split (an enum: its name, in lower case).
    """

    patient: str
    split: str

    def __call__(self, key: Any) -> tuple[str, str]:
        """The key's (subject, split)."""
        split = getattr(key, self.split)
        name = split.name.lower() if isinstance(split, enum.Enum) else str(split)
        return str(getattr(key, self.patient)), name


class Leakage(beam.PTransform):
    """Examples -> a JSON note per subject written in more than one split."""

    def __init__(self, subject_split: Callable[[Any], tuple[str, str]]) -> None:
        super().__init__()
        self._subject_split = subject_split

    def expand(self, examples: beam.PCollection) -> beam.PCollection:
        """Groups the distinct (subject, split) pairs by subject."""
        subject_split = self._subject_split
        return (
            examples
            | "SubjectSplit" >> beam.Map(lambda e: subject_split(e.key))
            | "DistinctSubjectSplits" >> beam.Distinct()
            | "SplitsPerSubject" >> beam.GroupByKey()
            | "Leaks" >> beam.FlatMap(_leaks)
        )


def _leaks(element: tuple[str, Iterable[str]]) -> Iterator[str]:
    subject, splits = element
    found = sorted(set(splits))
    if len(found) > 1:
        yield json.dumps({"note": LEAKAGE_NOTE, "subject": subject, "splits": found})


def report_leakage(notes: Sequence[dict[str, Any]], output_dir: str, prog: str) -> dict[str, Any]:
    """Writes ``_leakage.json`` from a run's notes, says any leak; returns manifest parameters.

    Args:
        notes: The run's notes (those of other kinds are ignored).
        output_dir: The run's ``--output_dir``.
        prog: The command's name, for the message.
    """
    leaks = sorted(
        (
            {"subject": note["subject"], "splits": note["splits"]}
            for note in notes
            if note["note"] == LEAKAGE_NOTE
        ),
        key=lambda leak: str(leak["subject"]),
    )
    report = {"subjects_in_several_splits": len(leaks), "subjects": leaks}
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
    return {"subjects_in_several_splits": len(leaks), "leakage_report": leakage_uri}
