"""Images as files under folders or globs (an extracted ``files/`` tree), keyed like tar members.

Listing yields file metadata only; each image becomes ``(path, ImageItem)``
with its URI as the ref, which `TransformFn` reads after the join, as
``images-to-tfrecord`` does. The relative path (under the folder its pattern
starts in) is what the dataset's ``parse_path`` sees.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.io import fileio

from datathon_etl.framework.ingest.join import ImageItem
from datathon_etl.framework.ingest.spec import IngestSpec
from datathon_etl.framework.quarantine import QUARANTINE_TAG, Quarantined, Reason, Stage
from datathon_etl.framework.sources.folders import TallyInputFolders
from datathon_etl.framework.sources.options import input_glob, input_root, relative_path
from datathon_etl.framework.sources.regular_files import irregular_kind

__all__ = ["SKIPPED_TAG", "ImageFiles", "KeyImageFileFn", "ListImageFiles"]

SKIPPED_TAG = "skipped"
"""Tagged output of the relative paths that ``path_match_regex`` left out."""


class KeyImageFileFn(beam.DoFn):
    """A listed file -> ``(path, ImageItem)``; one that cannot be an image is quarantined.

    Args:
        spec: The dataset's ingestion spec (``parse_path``, ``format_path``).
        roots: The folders the patterns start in (relative paths start there).
        path_match_regex: Files whose relative path does not match in full
            are skipped (tagged `SKIPPED_TAG`).
        max_bytes: Larger files are quarantined (``member_too_large``).

    FIFOs, devices and links to them are quarantined (``not_a_regular_file``)
    without being opened.
    """

    def __init__(
        self,
        spec: IngestSpec,
        roots: Sequence[str],
        path_match_regex: str | None,
        max_bytes: int,
    ) -> None:
        super().__init__()
        self._spec = spec
        self._roots = tuple(roots)
        self._regex = path_match_regex
        self._max_bytes = max_bytes

    def process(self, metadata: fileio.FileMetadata) -> Iterator[Any]:
        """Keys one file by its canonical path."""
        path = relative_path(metadata.path, self._roots)
        if self._regex is not None and not re.fullmatch(self._regex, path):
            yield beam.pvalue.TaggedOutput(SKIPPED_TAG, path)
            return
        try:
            key = self._spec.parse_path(path)
        except ValueError as e:
            yield _refuse(path, Stage.PARSE_PATH, Reason.UNPARSEABLE_PATH, str(e), metadata.path)
            return
        # Before the size: a FIFO or a device lists as 0 bytes.
        kind = irregular_kind(metadata.path)
        if kind is not None:
            yield _refuse(path, Stage.READ, Reason.NOT_A_REGULAR_FILE, kind, metadata.path)
            return
        if metadata.size_in_bytes > self._max_bytes:
            detail = f"{metadata.size_in_bytes} bytes > --max_member_bytes {self._max_bytes}"
            yield _refuse(path, Stage.READ, Reason.MEMBER_TOO_LARGE, detail, metadata.path)
            return
        yield self._spec.format_path(key), ImageItem(metadata.path, key, metadata.path)


def _refuse(path: str, stage: Stage, reason: Reason, detail: str, source: str) -> Any:
    return beam.pvalue.TaggedOutput(
        QUARANTINE_TAG, Quarantined(path, stage, reason, detail, source)
    )


class ImageFiles(NamedTuple):
    """What `ListImageFiles` returns."""

    images: beam.PCollection
    """``(canonical path, ImageItem)`` per image file, its URI as the ref."""
    skipped: beam.PCollection
    """Relative paths left out by ``path_match_regex``."""
    quarantine: beam.PCollection
    """`Quarantined` files (unparseable path, not a regular file, too large)."""
    folders: beam.PCollection
    """JSON notes: each input folder's files, bytes and latest change (`TallyInputFolders`)."""


class ListImageFiles(beam.PTransform):
    """Folders (``dir/``: everything below) or globs -> keyed image files.

    Args:
        spec: The dataset's ingestion spec.
        patterns: The ``--input_prefix`` values, local or gs://.
        path_match_regex: Only files whose relative path matches are read.
        max_bytes: Larger files are quarantined.
    """

    def __init__(
        self,
        spec: IngestSpec,
        patterns: Sequence[str],
        path_match_regex: str | None,
        max_bytes: int,
    ) -> None:
        super().__init__()
        self._globs = [input_glob(pattern) for pattern in patterns]
        self._folders = TallyInputFolders(patterns)
        roots = [input_root(pattern) for pattern in patterns]
        self._fn = KeyImageFileFn(spec, roots, path_match_regex, max_bytes)

    def expand(self, pbegin: beam.pvalue.PBegin) -> ImageFiles:
        """Lists the files (metadata only), keys them and sums them per folder."""
        listed = pbegin | "Patterns" >> beam.Create(self._globs) | "MatchFiles" >> fileio.MatchAll()
        keyed = listed | "KeyFiles" >> beam.ParDo(self._fn).with_outputs(
            SKIPPED_TAG, QUARANTINE_TAG, main="images"
        )
        folders = listed | "Folders" >> self._folders
        return ImageFiles(keyed.images, keyed[SKIPPED_TAG], keyed[QUARANTINE_TAG], folders)
