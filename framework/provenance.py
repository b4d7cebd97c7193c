"""Where a run's outputs came from: its command, the versions it ran, when, how long, its inputs.

An ingestion records this in its manifest's parameters (``run`` and
``inputs``), so the data card can say it without the inputs or the
machine at hand.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import platform
import time
from collections.abc import Iterable, Sequence
from typing import Any

import attrs
from apache_beam.io.filesystems import FileSystems

__all__ = ["PACKAGES", "RunClock", "describe_files", "iso_time", "versions"]

PACKAGES = (
    "datathon-etl",
    "apache-beam",
    "duckdb",
    "pyarrow",
    "pillow",
    "simplejpeg",
    "tensorflow-cpu",
)
"""The packages whose versions decide what a run writes."""


def versions(packages: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Python's and each installed package's version (packages not installed are left out)."""
    found = {"python": platform.python_version()}
    for name in packages:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def describe_files(uris: Sequence[str]) -> list[dict[str, Any]]:
    """Each file's URI, size in bytes and modification time (UTC, ISO 8601), in order.

    Works for every filesystem Beam knows (local, ``gs://``); a time the
    filesystem does not give is None.
    """
    if not uris:
        return []
    described = []
    for result in FileSystems.match(list(uris)):
        for metadata in result.metadata_list:
            seconds = metadata.last_updated_in_seconds
            described.append(
                {
                    "uri": metadata.path,
                    "bytes": metadata.size_in_bytes,
                    "modified": iso_time(seconds) if seconds else None,
                }
            )
    return described


def iso_time(seconds: float) -> str:
    """A POSIX time as UTC ISO 8601, to the second."""
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    return moment.isoformat(timespec="seconds")


@attrs.define
class RunClock:
    """When a run started, and how long it has taken since.

    Attributes:
        command: The command line, as typed (program and arguments).
    """

    command: list[str]
    _wall: float = attrs.field(factory=time.time, init=False)
    _monotonic: float = attrs.field(factory=time.monotonic, init=False)

    def record(self) -> dict[str, Any]:
        """The ``run`` parameters: command, versions, start (UTC) and seconds so far."""
        return {
            "command": list(self.command),
            "versions": versions(),
            "started": iso_time(self._wall),
            "seconds": round(time.monotonic() - self._monotonic, 3),
        }
