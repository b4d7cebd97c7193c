"""The ingestion's Beam steps around the join: key images, transform, write.

Bytes never go through a shuffle: the join (`assemble`) sees member refs and
parsed rows; bytes are read by range after it, on whichever worker has the image.
Members of compressed tars cannot be read by range, so they are resized
where they are streamed and only the small result joins.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any, ClassVar, NamedTuple

import apache_beam as beam
import attrs
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows

from datathon_etl.framework.archives import (
    LoadedMember,
    MemberRef,
    atomic_create,
    output_path,
    read_member,
)
from datathon_etl.framework.archives._source import ArchiveHandles
from datathon_etl.framework.cpu_pool import cpu_pool
from datathon_etl.framework.images import ImageError, ImageSpec, Transformed, transform_and_read
from datathon_etl.framework.images.formats import ImageFormat, tree_path
from datathon_etl.framework.ingest.compact import JoinCodec
from datathon_etl.framework.ingest.dicom_columns import DicomColumns
from datathon_etl.framework.ingest.join import ImageItem, LabelRecord, Refused
from datathon_etl.framework.ingest.pixel_sizes import CombinePixelSizes, PixelSizes
from datathon_etl.framework.ingest.spec import IngestSpec
from datathon_etl.framework.manifest import IMAGES, Outcome, Tally
from datathon_etl.framework.quarantine import QUARANTINE_TAG, Quarantined, Reason, Stage
from datathon_etl.framework.schema.example import Example
from datathon_etl.framework.sources.regular_files import NotARegularFileError, read_regular_file

__all__ = [
    "GROUP_TAG",
    "IMAGES",
    "LABEL_ROWS",
    "ROWS_TAG",
    "SIZES_TAG",
    "SKIPPED_TAG",
    "TALLIES_TAG",
    "KeyImageFn",
    "LabelledImages",
    "Progress",
    "TransformFn",
    "TransformImages",
    "WriteImageFileFn",
    "pack_found",
]

LABEL_ROWS = "label_rows"
"""Manifest stage: the data rows of the label CSVs."""
ROWS_TAG = "refused_rows"
"""Tagged output of ``(stage, Quarantined)``: rows refused after the join with their image."""
SKIPPED_TAG = "skipped"
"""Tagged output of rows whose image ``--path_match_regex`` leaves out."""
TALLIES_TAG = "tallies"
"""Tagged output of `TransformFn`: per bundle, a `Tally` of the rows written per stage."""
GROUP_TAG = "group_refusals"
"""Tagged output of `TransformFn`: ``(group, Quarantined)`` per refused image labelled per group."""
SIZES_TAG = "source_sizes"
"""Tagged output of `TransformFn`: a `PixelSizes` per bundle, the sources of its examples."""


def _refuse(path: str, stage: Stage, reason: Reason, detail: str, source: str) -> Any:
    return beam.pvalue.TaggedOutput(
        QUARANTINE_TAG, Quarantined(path, stage, reason, detail, source)
    )


class KeyImageFn(beam.DoFn):
    """A tar member -> ``(path, ImageItem)``; an unparseable name is quarantined.

    A `MemberRef` stays a reference. A `LoadedMember` (from a compressed tar)
    is transformed here, so that only the small result joins (with the data
    set's declared DICOM attributes, read from its header).
    """

    def __init__(self, spec: IngestSpec, image: ImageSpec) -> None:
        super().__init__()
        self._spec = spec
        self._image = image
        columns = DicomColumns.of(spec.key_type, spec.labels_type)
        self._keywords = columns.keywords if columns is not None else ()

    def process(self, member: MemberRef | LoadedMember) -> Iterator[Any]:
        """Parses the member's name; transforms a loaded member's bytes."""
        try:
            key = self._spec.parse_path(member.name)
        except ValueError as e:
            yield _refuse(
                member.name, Stage.PARSE_PATH, Reason.UNPARSEABLE_PATH, str(e), member.source
            )
            return
        ref: Any = member
        if isinstance(member, LoadedMember):
            try:
                ref = transform_and_read(member.data, self._image, self._keywords)
            except ImageError as e:
                ref = Refused(e.reason, e.detail)
        yield self._spec.format_path(key), ImageItem(member.source, key, ref)


@attrs.frozen
class Progress:
    """Prints images done, rate and time left from each worker process, every few seconds.

    The step that pairs images with label rows counts the images it packs
    (`found`); every image then counts as done once written or refused
    (`done`). On the local runners that step's grouping ends before the first
    image is transformed, so the count found in a process is its whole share
    by then. State is per run and process, shared
    by the threads that run bundles.

    Attributes:
        run_id: Identifies the run.
        label: Starts each line (``mimic_cxr ingest``).
    """

    run_id: str
    label: str

    _lock: ClassVar[threading.Lock] = threading.Lock()
    # run id -> [found, done, when the first was done, last print]
    _runs: ClassVar[dict[str, list[float]]] = {}

    def found(self) -> None:
        """Counts one image the join will decide on."""
        with self._lock:
            self._runs.setdefault(self.run_id, [0, 0, 0.0, 0.0])[0] += 1

    def done(self, count: int = 1) -> None:
        """Counts images written or refused; prints a line every few seconds."""
        if not count:  # e.g. label rows without an image: the clock starts at the first image
            return
        now = time.monotonic()
        with self._lock:
            state = self._runs.setdefault(self.run_id, [0, 0, 0.0, 0.0])
            if not state[1]:
                state[2] = state[3] = now
            state[1] += count
            if now - state[3] < 5.0:
                return
            state[3] = now
            found, done = int(state[0]), int(state[1])
            rate = done / max(now - state[2], 1e-9)
        left = max(found - done, 0) / rate
        print(
            f"{self.label}: {done} of {found} images done in this process, {rate:.1f}/s, "
            f"about {left:.0f} s left [pid {os.getpid()}]",
            flush=True,
        )


def pack_found(pair: tuple[str, ImageItem[Any]], codec: JoinCodec, progress: Progress) -> Any:
    """Packs one ``(path, ImageItem)`` for a grouping, counting it as found."""
    progress.found()
    return codec.pack_image(pair)


class TransformFn(beam.DoFn):
    """``(path, (ImageItem, LabelRecord))`` -> `Example`, reading the bytes here.

    An `ImageItem`'s ref is a tar `MemberRef` (read by range), a file URI
    (read whole), an already-transformed image (`Transformed`), or a `Refused` marker.

    An image that does not decode is quarantined (main quarantine output) and
    so is each table row it used (`ROWS_TAG`), with the same reason; one
    labelled per group also goes to `GROUP_TAG`, keyed by its group. So is one
    whose declared DICOM attributes (`columns`) do not fit their columns;
    those that do are set in the example's key and labels. The sources' pixel
    sizes of the examples of each bundle, and the rows written with them per
    stage, are counted and emitted at its end (`SIZES_TAG`, `TALLIES_TAG`).

    Bytes are read here; the transform itself goes to the process's
    `cpu_pool` (when it has more than one CPU), so that the workers of a
    process share its CPUs to the end of the stage, and one worker alone
    (Beam's default) uses every CPU. A bundle has at most one image per pool
    thread in flight; results come out in input order.
    """

    def __init__(
        self, image: ImageSpec, progress: Progress, columns: DicomColumns | None = None
    ) -> None:
        super().__init__()
        self._image = image
        self._progress = progress
        self._columns = columns
        self._keywords = columns.keywords if columns is not None else ()
        self._written = Metrics.counter("datathon_etl", "images_written")
        self._refused = Metrics.counter("datathon_etl", "images_quarantined")

    def setup(self) -> None:
        """Opens archives lazily and keeps a few open between elements."""
        self._handles = ArchiveHandles()
        self._pool = cpu_pool()
        self._pending: deque[_Pending] = deque()

    def start_bundle(self) -> None:
        """Nothing is in flight at the start of a bundle, nor counted."""
        self._pending.clear()
        self._sizes = PixelSizes()
        self._rows_written: Counter[str] = Counter()

    def process(
        self, element: tuple[str, tuple[ImageItem[Any], LabelRecord[Any, Any]]]
    ) -> Iterator[Any]:
        """Reads one image and starts its transform; emits the images done by now."""
        path, (item, record) = element
        try:
            if isinstance(item.ref, Refused):
                raise ImageError(item.ref.reason, item.ref.detail)
            if isinstance(item.ref, Transformed):
                result: Future[Transformed] | Transformed = item.ref
            elif self._pool is None:
                result = transform_and_read(self._read(item.ref), self._image, self._keywords)
            else:
                result = self._pool.submit(
                    transform_and_read, self._read(item.ref), self._image, self._keywords
                )
        except ImageError as e:
            yield from self._refuse(path, item, record, e)
            return
        self._pending.append(_Pending(path, item, record, result))
        # Wait only when the pool holds more than a call per thread from this
        # bundle (so that one bundle alone keeps every CPU busy); emit whatever
        # is done, in order.
        in_flight = self._pool.threads if self._pool else 0
        while self._pending and (len(self._pending) > in_flight or _done(self._pending[0].result)):
            yield from self._emit(self._pending.popleft())

    def finish_bundle(self) -> Iterator[Any]:
        """Waits for the images still in flight and emits them, then the bundle's pixel sizes."""
        while self._pending:
            for output in self._emit(self._pending.popleft()):
                if isinstance(output, beam.pvalue.TaggedOutput):
                    yield beam.pvalue.TaggedOutput(
                        output.tag, GlobalWindows.windowed_value(output.value)
                    )
                else:
                    yield GlobalWindows.windowed_value(output)
        for stage, count in sorted(self._rows_written.items()):
            tally = Tally(stage, Outcome.WRITTEN, count=count)
            yield beam.pvalue.TaggedOutput(TALLIES_TAG, GlobalWindows.windowed_value(tally))
        if self._sizes.counts:
            yield beam.pvalue.TaggedOutput(SIZES_TAG, GlobalWindows.windowed_value(self._sizes))
        self._handles.close()

    def _emit(self, pending: _Pending) -> Iterator[Any]:
        path, item, record, result = pending
        key, labels = record.key, record.labels
        try:
            done = result if isinstance(result, Transformed) else result.result()
            if self._columns is not None:
                key, labels = self._columns.fill(key, labels, done.attributes)
        except ImageError as e:
            yield from self._refuse(path, item, record, e)
            return
        self._written.inc()
        self._progress.done()
        self._sizes.add(done.width, done.height)
        self._rows_written.update(stage for stage, _ in record.rows)
        yield Example(image=done.image, path=path, key=key, labels=labels)

    def _refuse(
        self, path: str, item: ImageItem[Any], record: LabelRecord[Any, Any], e: ImageError
    ) -> Iterator[Any]:
        self._refused.inc()
        self._progress.done()
        image = Quarantined(path, Stage.DECODE, e.reason, e.detail, item.source)
        yield beam.pvalue.TaggedOutput(QUARANTINE_TAG, image)
        if record.group is not None:
            yield beam.pvalue.TaggedOutput(GROUP_TAG, (record.group, image))
        detail = f"its image {item.source} was refused: {e.detail}"
        for stage, where in record.rows:
            row = Quarantined(path, Stage.DECODE, e.reason, detail, where)
            yield beam.pvalue.TaggedOutput(ROWS_TAG, (stage, row))

    def _read(self, ref: MemberRef | str) -> bytes:
        if isinstance(ref, MemberRef):
            return read_member(ref, self._handles.get(ref.archive))
        try:
            return read_regular_file(ref)
        except NotARegularFileError as e:  # swapped since it was listed
            raise ImageError(Reason.NOT_A_REGULAR_FILE, str(e)) from e

    def teardown(self) -> None:
        """Closes any archive still open."""
        self._handles.close()


class _Pending(NamedTuple):
    path: str
    item: ImageItem[Any]
    record: LabelRecord[Any, Any]
    result: Future[Transformed] | Transformed


def _done(result: Future[Transformed] | Transformed) -> bool:
    return isinstance(result, Transformed) or result.done()


class LabelledImages(NamedTuple):
    """What `TransformImages` returns."""

    examples: beam.PCollection
    """`Example` per image, resized."""
    image_refusals: beam.PCollection
    """`Quarantined` images (undecodable, ...)."""
    row_refusals: beam.PCollection
    """``(stage, Quarantined)``: the rows those images used."""
    group_refusals: beam.PCollection
    """``(group, Quarantined)``: those of the images labelled per group."""
    tallies: beam.PCollection
    """`Tally` of the rows written with the examples."""
    pixel_sizes: beam.PCollection
    """One JSON note: the examples' source pixel sizes (`CombinePixelSizes`)."""


class TransformImages(beam.PTransform):
    """``(path, (ImageItem, LabelRecord))`` pairs -> resized examples and their refusals.

    Args:
        label: Names the run in progress lines.
        image: The image transform.
        run_id: Identifies the run (progress counters are per run).
        columns: The data set's declared DICOM header columns, if any.

    Attributes:
        progress: Counts the images. Whatever makes the pairs counts each image
            `found` before its grouping ends (so that the count is whole before
            the first image is done) and `done` if it refuses one.
    """

    def __init__(
        self, label: str, image: ImageSpec, run_id: str, columns: DicomColumns | None = None
    ) -> None:
        super().__init__()
        self.progress = Progress(run_id, label)
        self._transform = TransformFn(image, self.progress, columns)

    def expand(self, pairs: beam.PCollection) -> LabelledImages:
        """Reads each image's bytes and transforms it."""
        transformed = pairs | "Transform" >> beam.ParDo(self._transform).with_outputs(
            QUARANTINE_TAG, ROWS_TAG, GROUP_TAG, TALLIES_TAG, SIZES_TAG, main="examples"
        )
        return LabelledImages(
            transformed.examples,
            transformed[QUARANTINE_TAG],
            transformed[ROWS_TAG],
            transformed[GROUP_TAG],
            transformed[TALLIES_TAG],
            transformed[SIZES_TAG] | "PixelSizes" >> CombinePixelSizes(),
        )


class WriteImageFileFn(beam.DoFn):
    """Writes each example's image at ``<output_dir>/<path>``, atomically (see `tree_path`)."""

    def __init__(self, output_dir: str, temp_dir: str, image_format: ImageFormat) -> None:
        super().__init__()
        self._output_dir = output_dir
        self._temp_dir = temp_dir
        self._format = image_format

    def process(self, example: Example[Any, Any]) -> Iterator[str]:
        """Writes one file; yields its URI."""
        destination = output_path(self._output_dir, tree_path(example.path, self._format))
        with atomic_create(destination, self._temp_dir) as sink:
            sink.write(example.image)
        yield destination
