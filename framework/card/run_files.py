"""What a run left in its ``--output_dir``: the manifest and the quarantine records.

Read through Beam's FileSystems, so a Dataflow run's ``gs://`` outputs read
the same as a local run's.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import attrs
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from datathon_etl.framework.manifest import Manifest
from datathon_etl.framework.run_layout import MANIFEST_NAME, QUARANTINE_DIR

__all__ = ["QuarantineSummary", "read_manifest", "read_quarantine"]


def read_manifest(output_dir: str) -> Manifest:
    """Reads ``<output_dir>/_manifest.json``.

    Raises:
        ValueError: There is none (no run finished there), or it is not a manifest.
    """
    uri = f"{output_dir}/{MANIFEST_NAME}"
    if not FileSystems.exists(uri):
        raise ValueError(f"{uri} does not exist: no run finished in {output_dir}")
    try:
        return Manifest.read(uri)
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{uri} is not a datathon-etl manifest: {e}") from e


@attrs.frozen
class QuarantineSummary:
    """The quarantine's records, counted and sampled.

    Attributes:
        counts: (record stage, reason) -> records, sorted.
        first: (record stage, reason) -> its first records (by source, then path).
    """

    counts: dict[tuple[str, str], int]
    first: dict[tuple[str, str], list[dict[str, Any]]]

    @property
    def total(self) -> int:
        """All records."""
        return sum(self.counts.values())


def read_quarantine(output_dir: str, *, first: int = 3) -> QuarantineSummary:
    """Counts ``<output_dir>/_quarantine/*.jsonl`` per stage and reason; keeps ``first`` of each."""
    (found,) = FileSystems.match([f"{output_dir}/{QUARANTINE_DIR}/*.jsonl"])
    counts: Counter[tuple[str, str]] = Counter()
    kept: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for metadata in sorted(found.metadata_list, key=lambda m: m.path):
        with FileSystems.open(metadata.path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            for line in f.read().decode("utf-8").splitlines():
                if not line.strip():
                    continue
                record = json.loads(line)
                key = (str(record.get("stage", "")), str(record.get("reason", "")))
                counts[key] += 1
                # Keep the smallest few by (source, path): the same records whatever the file order.
                records = kept.setdefault(key, [])
                records.append(record)
                records.sort(key=_order)
                del records[first:]
    return QuarantineSummary(dict(sorted(counts.items())), dict(sorted(kept.items())))


def _order(record: dict[str, Any]) -> tuple[str, str]:
    return str(record.get("source", "")), str(record.get("path", ""))
