"""Writing files under an output prefix: safe names, atomic writes, one writer per name.

Nothing is written outside the prefix: every relative path goes through
`safe_relative_path` before `output_path` joins it to the prefix. A file is
written under a temporary name in a scratch folder and renamed into place
only when complete, so a file that failed half-way never looks finished (on
GCS the rename is a server-side copy). Two inputs that would land on the same
name are settled by `UniqueOutputs` before anything is written.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO, Generic, NamedTuple, TypeVar

import apache_beam as beam
from apache_beam.io.filesystem import BeamIOError, CompressionTypes
from apache_beam.io.filesystems import FileSystems

from datathon_etl.framework.output_folders import storage_failure
from datathon_etl.framework.quarantine import QUARANTINE_TAG, Quarantined, Reason, Stage

__all__ = [
    "OutputWriteError",
    "UniqueOutputs",
    "UniqueOutputsResult",
    "UnsafePathError",
    "atomic_create",
    "commit",
    "output_path",
    "printable",
    "safe_relative_path",
    "staged_file",
]

_T = TypeVar("_T")
_DRIVE = re.compile(r"^[A-Za-z]:")


class UnsafePathError(ValueError):
    """A name that could reach outside the output prefix or names nothing."""


class OutputWriteError(Exception):
    """Writing an output file failed (e.g. a file stands where a folder must go).

    Not for a full or read-only disk: that error propagates as it is and
    stops the run (`datathon_etl.framework.output_folders.guarded`).
    """


def printable(name: str) -> str:
    """Returns ``name`` with undecodable bytes (tarfile's surrogates) escaped."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def safe_relative_path(name: str) -> str:
    r"""Returns ``name`` as a normalised relative POSIX path, or raises.

    ``./`` and empty components are dropped (``a//./b`` is ``a/b``). Refused:
    absolute names (``/x``, ``\\x``, ``C:x``), any ``..`` component (with
    ``\\`` counted as a separator too, since a Windows tool would), names that
    are not valid UTF-8 and names that are empty once normalised.

    Raises:
        UnsafePathError: With the reason, for a refused name.
    """
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafePathError("name is not valid UTF-8") from None
    if "\x00" in name:
        raise UnsafePathError("name contains a NUL character")
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise UnsafePathError("absolute path")
    if ".." in re.split(r"[/\\]", name):
        raise UnsafePathError("'..' component")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if not parts:
        raise UnsafePathError("empty name")
    return "/".join(parts)


def output_path(output_dir: str, relative: str) -> str:
    """Joins ``relative`` (checked by `safe_relative_path`) under ``output_dir``.

    Raises:
        UnsafePathError: ``relative`` is not already normalised and safe.
    """
    if safe_relative_path(relative) != relative:
        raise UnsafePathError(f"{relative!r} is not a normalised relative path")
    return f"{output_dir.rstrip('/')}/{relative}"


class _Sink:
    """The writable end of `staged_file`: write failures are `OutputWriteError`."""

    def __init__(self, handle: BinaryIO, uri: str) -> None:
        self._handle = handle
        self.uri = uri
        self.bytes_written = 0

    def write(self, data: bytes | memoryview) -> None:
        """Appends ``data``."""
        try:
            self._handle.write(data)
        except (OSError, BeamIOError) as e:
            _raise_storage_failure(e)
            raise OutputWriteError(f"{self.uri}: {e}") from e
        self.bytes_written += len(data)


def _raise_storage_failure(error: OSError | BeamIOError) -> None:
    # A full or read-only disk is no one file's fault: it stops the run
    # (one line, no manifest) rather than quarantining every file after it.
    if storage_failure(error) is not None:
        raise error


def _delete_quietly(uri: str) -> None:
    # Best effort: the run's scratch folder is deleted at the end anyway.
    with contextlib.suppress(OSError, BeamIOError):
        FileSystems.delete([uri])


def _ensure_parent(uri: str) -> None:
    parent, _ = FileSystems.split(uri)
    # It may exist already (or cannot be made, which the rename then reports).
    with contextlib.suppress(OSError, BeamIOError):
        FileSystems.mkdirs(parent)


@contextmanager
def staged_file(temp_dir: str) -> Iterator[_Sink]:
    """Yields a sink on a fresh file under ``temp_dir`` (its URI is ``sink.uri``).

    On any exception in the block the file is deleted and the exception
    propagates; on success it stays, for `commit` to move into place.

    Raises:
        OutputWriteError: Creating or writing the file failed.
    """
    temp = f"{temp_dir.rstrip('/')}/{uuid.uuid4().hex}"
    try:
        handle = FileSystems.create(temp, compression_type=CompressionTypes.UNCOMPRESSED)
    except (OSError, BeamIOError) as e:
        _raise_storage_failure(e)
        raise OutputWriteError(f"{temp}: {e}") from e
    try:
        with handle:
            yield _Sink(handle, temp)
    except BaseException:
        _delete_quietly(temp)
        raise


def commit(staged: str, destination: str) -> None:
    """Renames the finished file ``staged`` to ``destination``, replacing any file there.

    Raises:
        OutputWriteError: The rename failed (e.g. a folder stands at
            ``destination``); ``staged`` is deleted.
    """
    _ensure_parent(destination)
    try:
        FileSystems.rename([staged], [destination])
    except (OSError, BeamIOError) as e:
        _delete_quietly(staged)
        _raise_storage_failure(e)
        raise OutputWriteError(f"{destination}: {e}") from e


@contextmanager
def atomic_create(destination: str, temp_dir: str) -> Iterator[_Sink]:
    """Yields a sink whose bytes appear at ``destination`` only if the block succeeds.

    `staged_file` then `commit`: the bytes go to a fresh name under
    ``temp_dir`` (inside the output prefix, deleted at the end of the run)
    and are renamed to ``destination`` once complete. On any exception the
    temporary file is deleted and the exception propagates.

    Raises:
        OutputWriteError: Creating, writing or renaming the file failed.
    """
    with staged_file(temp_dir) as sink:
        yield sink
    commit(sink.uri, destination)


class UniqueOutputsResult(NamedTuple, Generic[_T]):
    """What `UniqueOutputs` returns."""

    unique: beam.PCollection[_T]
    """One element per output name: the first by source."""
    quarantine: beam.PCollection[Quarantined]
    """The others, as ``DUPLICATE_OUTPUT_PATH``."""


class _FirstWinsFn(beam.DoFn):
    def __init__(self, source_of: Callable[[Any], str], stage: Stage) -> None:
        super().__init__()
        self._source_of = source_of
        self._stage = stage

    def process(self, element: tuple[str, Iterable[Any]]) -> Iterator[Any]:
        name, items = element
        first, *others = sorted(items, key=self._source_of)
        yield first
        for other in others:
            yield beam.pvalue.TaggedOutput(
                QUARANTINE_TAG,
                Quarantined(
                    path=name,
                    stage=self._stage,
                    reason=Reason.DUPLICATE_OUTPUT_PATH,
                    detail=f"{self._source_of(first)} is written to the same path and kept",
                    source=self._source_of(other),
                ),
            )


class UniqueOutputs(beam.PTransform[beam.PCollection[Any], UniqueOutputsResult[Any]]):
    """Keeps one element per output name; the others are quarantined.

    Of the elements that share a name, the one whose source sorts first is
    kept, so the result does not depend on the order work ran in. The grouping
    is a shuffle of small elements (refs, paths), so it also spreads the
    writes that follow over all workers, as a `Reshuffle` would.

    Args:
        name_of: The output name of an element (picklable).
        source_of: Where an element comes from, e.g. ``archive#member``.
        stage: The stage quarantined duplicates are recorded under.
    """

    def __init__(
        self,
        name_of: Callable[[Any], str],
        source_of: Callable[[Any], str],
        stage: Stage = Stage.WRITE,
    ) -> None:
        super().__init__()
        self._name_of = name_of
        self._source_of = source_of
        self._stage = stage

    def expand(self, items: beam.PCollection[Any]) -> UniqueOutputsResult[Any]:
        """Groups by name and keeps the first by source."""
        name_of = self._name_of
        results = (
            items
            | "KeyByName" >> beam.Map(lambda item: (name_of(item), item))
            | "GroupByName" >> beam.GroupByKey()
            | "FirstWins"
            >> beam.ParDo(_FirstWinsFn(self._source_of, self._stage)).with_outputs(
                QUARANTINE_TAG, main="unique"
            )
        )
        return UniqueOutputsResult(results.unique, results[QUARANTINE_TAG])
