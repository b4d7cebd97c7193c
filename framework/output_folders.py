"""Output folders a run may use: writable, apart from its inputs, owned by one run at a time.

Each command that writes output folders (ingest, images-to-tfrecord, untar,
decompress), before its pipeline is built:

1. refuses an output folder that overlaps an input (`check_apart`): one that
   an input glob can match files under (an ``--output_dir`` inside an
   ``--input_prefix``; an input tar or CSV inside ``--output_dir``). A re-run
   would read its own outputs as inputs, and an output (an untarred member,
   a decompressed file) could replace an input.
2. claims each output folder (`claim_outputs`). A local folder is made and
   ``<folder>/_run.lock`` is held with an exclusive ``flock`` for the
   command's life; the kernel drops the lock when the process ends, however
   it ends, so a killed run leaves nothing stuck (the file it leaves is
   reused). Creating that file is the write check: a file in the folder's
   place, a read-only file system, a folder without write permission or a
   full disk is one line and exit 2 before anything runs, and so is a folder
   another run holds (the line names that run).

`guarded` runs a command: a `UsageError` is one line and exit 2, and so is an
output that fails mid-run because its disk is full or read-only. Such a run
leaves no manifest (the earlier one was removed when it started), and the
line says so; the next run into the folder removes its scratch files. The
claims are released when the command returns, whatever happened.

On ``gs://`` nothing is locked (Cloud Storage has no lock a killed job
releases): the claim writes the ``_run.lock`` object only if there is none
(a precondition, so two runs that start together cannot both write it),
and the run deletes it when it ends. A killed run leaves it, and
the next run into that folder is refused, naming it, until it is deleted by
hand (``gcloud storage rm gs://BUCKET/FOLDER/_run.lock``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import fnmatch
import logging
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TextIO

import attrs
from apache_beam.io.filesystem import BeamIOError, FileSystem

from datathon_etl.framework.errors import EXIT_USAGE, UsageError
from datathon_etl.framework.run_layout import LOCK_NAME

__all__ = [
    "Locations",
    "check_apart",
    "claim_outputs",
    "guarded",
    "storage_failure",
]

Locations = Mapping[str, str | Sequence[str] | None]
"""Flag -> the location(s) it names (folders, or globs in Beam's syntax); ``None`` is skipped."""

_STORAGE_ERRNOS: Mapping[int, str] = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
}
"""Write failures that are the storage's, not one record's: they stop the run."""
_WILDCARD = re.compile(r"[*?\[]")


def _flat(locations: Locations) -> Iterator[tuple[str, str]]:
    for flag, value in locations.items():
        if value is None:
            continue
        for uri in [value] if isinstance(value, str) else value:
            yield flag, uri


def _is_local(uri: str) -> bool:
    return "://" not in uri


def _normal(folder: str) -> str:
    """A folder's canonical form: local paths absolute with links resolved; no trailing ``/``."""
    if _is_local(folder):
        return os.path.realpath(folder or ".")
    return folder.rstrip("/")


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _can_match_under(pattern: str, folder: str) -> bool:
    """Whether the glob ``pattern`` can match a file under ``folder`` (both normalised).

    Beam's syntax: ``*`` stays within a path component, ``**`` crosses them.
    The pattern's fixed head (up to the last ``/`` before a wildcard) is its
    root; below the root, each component is compared with the folder's.
    """
    wildcard = _WILDCARD.search(pattern)
    head = pattern[: wildcard.start()] if wildcard else pattern
    cut = head.rfind("/") + 1
    root, rest = _normal(pattern[:cut]), pattern[cut:]
    if _within(root, folder):
        return bool(rest)  # the pattern's files lie in the folder
    if not _within(folder, root):
        return False
    below = folder[len(root) :].strip("/").split("/")
    for depth, part in enumerate(rest.split("/")):
        if "**" in part or depth >= len(below):
            return True  # crosses into the folder, or names files deeper than it
        if not fnmatch.fnmatchcase(below[depth], part):
            return False
    return False  # the pattern ends at the folder or above it


def _can_match(pattern: str, path: str) -> bool:
    """Whether the glob ``pattern`` matches the file ``path`` (normalised)."""
    wildcard = _WILDCARD.search(pattern)
    head = pattern[: wildcard.start()] if wildcard else pattern
    cut = head.rfind("/") + 1
    root, rest = _normal(pattern[:cut]), pattern[cut:]
    if not _within(path, root) or path == root:
        return False
    relative = path[len(root) :].lstrip("/")
    return re.fullmatch(FileSystem.translate_pattern(rest), relative) is not None


def check_apart(outputs: Locations, inputs: Locations, *, files: Locations | None = None) -> None:
    """Refuses an output folder that an input glob can match files under.

    Args:
        outputs: Output folders by flag (local or ``gs://``).
        inputs: Input globs by flag, in Beam's syntax (an ``--input_prefix``
            folder as its ``folder/**`` glob).
        files: Output files outside those folders by flag (a DuckDB
            database), refused when an input glob matches them.

    Raises:
        UsageError: Naming the output and the input that overlap.
    """
    checks: list[tuple[str, str, Callable[[str, str], bool]]]
    checks = [(flag, uri, _can_match_under) for flag, uri in _flat(outputs)]
    checks += [(flag, uri, _can_match) for flag, uri in _flat(files or {})]
    for out_flag, output, overlaps in checks:
        normal = _normal(output)
        for in_flag, pattern in _flat(inputs):
            if _is_local(pattern) == _is_local(output) and overlaps(pattern, normal):
                raise UsageError(
                    f"{out_flag} {output} overlaps {in_flag} {pattern!r}: a run must not "
                    "read its own outputs or write over its inputs; write outside the "
                    "inputs' folders"
                )


@attrs.define
class _Claim:
    """One held output folder: a locked local file, or a gs:// lock object."""

    lock_uri: str
    fd: int | None = None

    def release(self) -> None:
        """Deletes the lock file, then drops the lock (in that order: see `_lock_local`)."""
        with contextlib.suppress(OSError, BeamIOError):
            if self.fd is None:
                from apache_beam.io.filesystems import FileSystems

                FileSystems.delete([self.lock_uri])
            else:
                os.unlink(self.lock_uri)
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


_held: list[_Claim] = []
"""The claims this process holds; `guarded` releases those its command took."""


def _holder_line() -> bytes:
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n".encode()


def _cannot_write(flag: str, folder: str, error: OSError) -> UsageError:
    # Name the file only when it is not the folder's own (a parent, say).
    own = (folder, os.path.join(folder, LOCK_NAME))
    where = f" ({error.filename})" if error.filename and error.filename not in own else ""
    if error.errno in (errno.EACCES, errno.EPERM):
        return UsageError(
            f"{flag} {folder}: permission denied{where}; choose a folder you can write to "
            "or change its permissions"
        )
    if error.errno == errno.EROFS:
        return UsageError(
            f"{flag} {folder} is on a read-only file system; choose a writable folder"
        )
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return UsageError(
            f"{flag} {folder}: no space left on its disk{where}; free space or choose "
            "another folder"
        )
    return UsageError(f"{flag} {folder} cannot be written: {error.strerror}{where}")


def _make_folder(flag: str, folder: str) -> None:
    try:
        os.makedirs(folder, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        # A file stands at the folder or at one of its parents.
        blocker = folder
        parent = os.path.dirname(os.path.abspath(folder))
        while not os.path.isfile(blocker) and parent != blocker:
            blocker, parent = parent, os.path.dirname(parent)
        if blocker == folder:
            what = "is a file, not a folder"
        elif os.path.isfile(blocker):
            what = f"cannot be made: {blocker} is a file"
        else:  # gone since: say what there was
            what = "cannot be made: a file stood in its way"
        raise UsageError(f"{flag} {folder} {what}; remove it or choose another folder") from None
    except OSError as e:
        raise _cannot_write(flag, folder, e) from e


def _lock_local(flag: str, folder: str) -> _Claim:
    _make_folder(flag, folder)
    lock = os.path.join(folder, LOCK_NAME)
    # A releasing run deletes the file before it unlocks it: a lock taken on
    # a file that is no longer at that path is retried on the new one.
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise _cannot_write(flag, folder, e) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            os.close(fd)
            raise UsageError(
                f"{flag} {folder} is in use by another run ({holder}); wait for it to "
                "finish or choose another folder"
            ) from None
        try:
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    claim = _Claim(lock, fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, _holder_line(), 0)
        os.fsync(fd)  # a full disk shows here, not mid-run
    except OSError as e:
        claim.release()
        raise _cannot_write(flag, folder, e) from e
    return claim


def _lock_gcs(flag: str, folder: str) -> _Claim:
    from google.api_core import exceptions
    from google.cloud import storage

    from datathon_etl.framework.preflight import google_credentials

    lock = f"{folder.rstrip('/')}/{LOCK_NAME}"
    bucket, _, name = lock[len("gs://") :].partition("/")
    credentials, project = google_credentials(f"{flag} {folder}")
    client = storage.Client(project=project, credentials=credentials)
    blob = client.bucket(bucket).blob(name)
    try:
        blob.upload_from_string(_holder_line(), if_generation_match=0)
    except exceptions.PreconditionFailed:
        try:
            holder = blob.download_as_bytes().decode("utf-8", "replace").strip()
        except exceptions.GoogleAPIError:
            holder = "unknown"
        raise UsageError(
            f"{flag} {folder} is in use by another run ({holder}); wait for it to finish, "
            f"or if no run is writing there (a killed run leaves it), delete {lock}"
        ) from None
    except exceptions.GoogleAPIError as e:
        raise UsageError(f"{flag} {folder}: cannot write {lock}: {e}") from e
    finally:
        client.close()
    return _Claim(lock)


def claim_outputs(folders: Locations) -> None:
    """Claims each output folder for this process until `guarded` returns.

    Local folders are made and locked (see the module docstring), gs:// ones
    marked. A folder named by several flags, or twice, is claimed once.

    Raises:
        UsageError: A folder cannot be written (naming why and what to do) or
            is another run's; the folders claimed so far are released.
    """
    start = len(_held)
    seen: set[str] = set()
    try:
        for flag, folder in _flat(folders):
            normal = _normal(folder)
            if normal in seen:
                continue
            seen.add(normal)
            lock = _lock_local if _is_local(folder) else _lock_gcs
            _held.append(lock(flag, folder))
    except BaseException:
        _release(start)
        raise


def _release(start: int) -> None:
    while len(_held) > start:
        _held.pop().release()


def storage_failure(error: BaseException) -> str | None:
    """What went wrong if ``error`` is a storage failure (a full disk...), else ``None``.

    Looks through the causes (Beam re-raises a worker's error with its own)
    and, for errors that come from another process as text, the messages.
    """
    stack: list[BaseException] = [error]
    seen: set[int] = set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        what = _STORAGE_ERRNOS.get(current.errno or 0) if isinstance(current, OSError) else None
        if what is not None:
            filename = getattr(current, "filename", None)
            return f"{what} writing {filename}" if filename else what
        if isinstance(current, BeamIOError) and isinstance(current.exception_details, dict):
            stack += [e for e in current.exception_details.values() if isinstance(e, BaseException)]
        message = str(current)
        for code, what in _STORAGE_ERRNOS.items():
            if os.strerror(code) in message:
                return what
        stack += [e for e in (current.__cause__, current.__context__) if e is not None]
    return None


def guarded(prog: str, command: Callable[[], int], *, err: TextIO | None = None) -> int:
    """Runs ``command``: usage errors and storage failures become one line and exit 2.

    Args:
        prog: The command's name, for its messages.
        command: The command's body; returns the exit code.
        err: Where the line goes (default stderr).
    """
    err = err or sys.stderr
    start = len(_held)
    loggers = [logging.getLogger(name) for name in _BEAM_ERROR_LOGGERS]
    for logger in loggers:
        logger.addFilter(_STORAGE_FAILURE_FILTER)
    try:
        return command()
    except UsageError as e:
        print(f"{prog}: {e}", file=err)
        return EXIT_USAGE
    except Exception as e:
        failure = storage_failure(e)
        if failure is None:
            raise
        print(
            f"{prog}: {failure}; the run stopped and its outputs are incomplete (no manifest "
            "was written): free space or choose another output folder, then run again",
            file=err,
        )
        return EXIT_USAGE
    finally:
        for logger in loggers:
            logger.removeFilter(_STORAGE_FAILURE_FILTER)
        _release(start)


_BEAM_ERROR_LOGGERS = (
    "apache_beam.runners.common",  # a DoFn's error, with its traceback, before it is re-raised
    "apache_beam.runners.portability.local_job_service",  # the same, from worker processes
)


class _DropStorageFailures(logging.Filter):
    """Drops Beam's logs of a storage failure (tracebacks): `guarded` says it in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and storage_failure(error) is not None:
            return False
        message = record.getMessage()
        return not any(os.strerror(code) in message for code in _STORAGE_ERRNOS)


_STORAGE_FAILURE_FILTER = _DropStorageFailures()
