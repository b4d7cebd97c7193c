"""Where a run writes: ``--output_dir`` and its reserved names, `RunLayout`, the output flags.

Layout of ``--output_dir``: the outputs, plus the reserved names
``_manifest.json`` (the run's counts, written last: see
`datathon_etl.framework.manifest`), ``_quarantine/`` (JSON lines, see
`datathon_etl.framework.quarantine`), ``_tmp/`` (scratch, deleted at the
end of a successful run and at the start of the next) and ``_run.lock``
(held while a run writes there: see `datathon_etl.framework.output_folders`).
"""

from __future__ import annotations

import argparse
import contextlib
import uuid
from typing import Final

import attrs
from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from datathon_etl.framework.errors import UsageError
from datathon_etl.framework.sharded_files import make_local_folders

__all__ = [
    "CARD_NAME",
    "JSONL",
    "LOCK_NAME",
    "MANIFEST_NAME",
    "RESERVED_NAMES",
    "OutputOptions",
    "RunLayout",
    "delete_tree",
    "resolve_output_dir",
]

MANIFEST_NAME: Final = "_manifest.json"
QUARANTINE_DIR: Final = "_quarantine"
TEMP_DIR: Final = "_tmp"
JSONL: Final = ".jsonl"
"""The suffix of the run's record files (quarantine, tallies, notes)."""
LOCK_NAME: Final = "_run.lock"
"""The file a run holds locked in each output folder (`datathon_etl.framework.output_folders`)."""
CARD_NAME: Final = "_card.html"
"""The data card (`datathon_etl.framework.card`)."""
RESERVED_NAMES: Final = frozenset({MANIFEST_NAME, QUARANTINE_DIR, TEMP_DIR, LOCK_NAME, CARD_NAME})
"""Top-level names under ``--output_dir`` that no output may take."""


class OutputOptions(PipelineOptions):
    """Where a run writes, and how many refusals fail it."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("output")
        group.add_argument(
            "--output_dir",
            default=None,
            help=(
                "The output prefix, a local folder or gs://bucket/path. Besides the "
                f"outputs it holds {MANIFEST_NAME} (the run's counts, written last), "
                f"{QUARANTINE_DIR}/ (refused inputs as JSON lines) and {TEMP_DIR}/ "
                "(scratch, removed after a successful run)."
            ),
        )
        group.add_argument(
            "--max_bad_fraction",
            type=float,
            default=0.0,
            help=(
                "Exit non-zero when more than this fraction of all inputs (all stages "
                "together) was quarantined. Default 0: any quarantined input fails "
                "the run (its outputs and manifest are still written)."
            ),
        )


def resolve_output_dir(
    prog: str, options: PipelineOptions, default: str | None = None
) -> tuple[str, float]:
    """Returns (output_dir, max_bad_fraction), validated; says so when the default is taken.

    Args:
        prog: The command, for the line printed.
        options: The flags.
        default: The folder without ``--output_dir``, for commands whose
            original had no such flag (None: required).

    Raises:
        UsageError: ``--output_dir`` missing, or the fraction outside [0, 1].
    """
    output = options.view_as(OutputOptions)
    output_dir: str | None = output.output_dir or default
    if not output_dir:
        raise UsageError("--output_dir is required")
    fraction: float = output.max_bad_fraction
    if not 0.0 <= fraction <= 1.0:
        raise UsageError(f"--max_bad_fraction must be between 0 and 1, got {fraction}")
    output_dir = output_dir.rstrip("/") or "/"
    if not output.output_dir:
        print(f"{prog}: no --output_dir: manifest and quarantine go to {output_dir}", flush=True)
    return output_dir, fraction


@attrs.frozen
class RunLayout:
    """Where a run's outputs, quarantine, manifest and scratch files go."""

    output_dir: str
    run_id: str = attrs.field(factory=lambda: uuid.uuid4().hex)

    @property
    def manifest_uri(self) -> str:
        """``<output_dir>/_manifest.json``."""
        return f"{self.output_dir}/{MANIFEST_NAME}"

    @property
    def quarantine_dir(self) -> str:
        """``<output_dir>/_quarantine``."""
        return f"{self.output_dir}/{QUARANTINE_DIR}"

    @property
    def quarantine_prefix(self) -> str:
        """The quarantine's file prefix."""
        return f"{self.quarantine_dir}/quarantine"

    @property
    def temp_dir(self) -> str:
        """This run's scratch folder, ``<output_dir>/_tmp/<run_id>``."""
        return f"{self.output_dir}/{TEMP_DIR}/{self.run_id}"

    @property
    def tallies_prefix(self) -> str:
        """The tallies' file prefix (see `datathon_etl.framework.run_records.read_tallies`)."""
        return f"{self.temp_dir}/tallies"

    @property
    def notes_prefix(self) -> str:
        """The notes' file prefix (labels per group: leakage, absent labels)."""
        return f"{self.temp_dir}/notes"

    def relative(self, uri: str) -> str:
        """``uri`` (under ``output_dir``) relative to ``output_dir``."""
        return uri.removeprefix(f"{self.output_dir}/")

    @staticmethod
    def is_reserved(relative: str) -> bool:
        """Whether an output at ``relative`` would clash with the run's own files."""
        return relative.split("/", 1)[0] in RESERVED_NAMES

    def prepare(self) -> None:
        """Removes an earlier run's manifest, card, quarantine and scratch files.

        Neither manifest, card nor quarantine may pass for this run's; scratch files
        are what a failed run left (the folder is this run's alone once
        claimed: `datathon_etl.framework.output_folders.claim_outputs`).
        Makes the quarantine and scratch folders of a local ``output_dir``
        (`datathon_etl.framework.run_records.WriteRunRecords` moves its files
        into them).
        """
        delete_tree(f"{self.output_dir}/{TEMP_DIR}")
        delete_tree(self.quarantine_dir)
        for record in (self.manifest_uri, f"{self.output_dir}/{CARD_NAME}"):
            if FileSystems.exists(record):
                FileSystems.delete([record])
        prefixes = (self.quarantine_prefix, self.tallies_prefix, self.notes_prefix)
        make_local_folders(self.output_dir, [self.relative(prefix) for prefix in prefixes])

    def cleanup(self) -> None:
        """Removes the scratch folder."""
        delete_tree(f"{self.output_dir}/{TEMP_DIR}")


def delete_tree(uri: str) -> None:
    """Deletes a local folder or a GCS prefix and everything under it, if there."""
    # A local folder is deleted by its path (recursively), a GCS prefix by
    # matching everything under it; each form finds nothing on the other.
    root = uri.rstrip("/")
    for target in (root, f"{root}/**"):
        with contextlib.suppress(BeamIOError):  # nothing there
            FileSystems.delete([target])
