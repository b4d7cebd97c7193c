"""Input folders (``--input_prefix``) as a run lists them: files, bytes, latest change.

Counted from the listing the run makes anyway (`FileMetadata`, no file
opened): each listed file is summed into its folder (the folder its pattern
starts in, `input_root`) by a combine, and each folder's sum becomes a JSON
note in the run's records (`datathon_etl.framework.run_records`). The
driver reads them back (`read_input_folders`) into the manifest's
``inputs``, beside the input files, so the data card lists a folder of
377,110 images as one line with its totals.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import FileMetadata

from datathon_etl.framework.provenance import iso_time
from datathon_etl.framework.run_records import read_run_lines
from datathon_etl.framework.sources.options import input_root

__all__ = ["INPUT_FOLDER_NOTE", "TallyInputFolders", "read_input_folders"]

INPUT_FOLDER_NOTE = "input_folder"
"""The ``note`` of the run record that carries one folder's totals."""

_Totals = tuple[int, int, float]
"""(files, bytes, latest modification time in seconds; 0 if unknown)."""


def _sum(values: Iterable[_Totals]) -> _Totals:
    files, size, latest = 0, 0, 0.0
    for n, b, t in values:
        files, size, latest = files + n, size + b, max(latest, t)
    return files, size, latest


def _folder_of(uri: str, roots: Sequence[str]) -> str:
    """The first root ``uri`` lies under (the pattern's folder), as `relative_path` picks it."""
    return next((root for root in roots if root and uri.startswith(root)), "")


class TallyInputFolders(beam.PTransform):
    """Listed files (`FileMetadata`) -> one JSON note per input folder with its totals.

    Args:
        patterns: The ``--input_prefix`` globs the files were listed from.
    """

    def __init__(self, patterns: Sequence[str]) -> None:
        super().__init__()
        self._roots = tuple(input_root(pattern) for pattern in patterns)

    def expand(self, files: beam.PCollection) -> beam.PCollection:
        """Sums the files per folder; one note each."""
        roots = self._roots

        def totals(metadata: FileMetadata) -> tuple[str, _Totals]:
            changed = float(metadata.last_updated_in_seconds or 0.0)
            return _folder_of(metadata.path, roots), (1, metadata.size_in_bytes, changed)

        return (
            files
            | "ByFolder" >> beam.Map(totals)
            | "Sum" >> beam.CombinePerKey(_sum)
            | "Note" >> beam.MapTuple(_note)
        )


def _note(folder: str, totals: _Totals) -> str:
    files, size, latest = totals
    return json.dumps(
        {
            "note": INPUT_FOLDER_NOTE,
            "uri": folder,
            "files": files,
            "bytes": size,
            "modified": iso_time(latest) if latest else None,
        }
    )


def read_input_folders(notes_prefix: str) -> list[dict[str, Any]]:
    """The run's input folders (``uri``, ``files``, ``bytes``, ``modified``), by URI."""
    folders = []
    for line in read_run_lines(notes_prefix):
        note = json.loads(line)
        if note.get("note") == INPUT_FOLDER_NOTE:
            folders.append({key: value for key, value in note.items() if key != "note"})
    return sorted(folders, key=lambda folder: str(folder["uri"]))
