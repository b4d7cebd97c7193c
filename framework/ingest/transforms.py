"""The ingestion's Beam steps: parse rows, key images, join, transform, write.

Bytes never go through a shuffle: the join sees member refs and parsed label
rows; bytes are read by range after it, on whichever worker has the pair.
Members of compressed tars cannot be read by range, so they are resized
where they are streamed and only the small result joins.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
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
from datathon_etl.framework.ingest.join import ImageItem, LabelRecord, Refused, decide
from datathon_etl.framework.ingest.pixel_sizes import CombinePixelSizes, PixelSizes
from datathon_etl.framework.ingest.spec import IngestSpec
from datathon_etl.framework.manifest import IMAGES
from datathon_etl.framework.quarantine import QUARANTINE_TAG, Quarantined, Reason, Stage
from datathon_etl.framework.schema import SourceRowError
from datathon_etl.framework.schema.example import Example
from datathon_etl.framework.sources.csv_rows import CsvRow
from datathon_etl.framework.sources.regular_files import NotARegularFileError, read_regular_file

__all__ = [
    "IMAGES",
    "LABEL_ROWS",
    "ROWS_TAG",
    "SIZES_TAG",
    "SKIPPED_TAG",
    "DecideFn",
    "JoinAndTransform",
    "KeyImageFn",
    "LabelledImages",
    "ParseLabelRowFn",
    "Progress",
    "TransformFn",
    "TransformImages",
    "WriteImageFileFn",
    "pack_found",
]

LABEL_ROWS = "label_rows"
"""Manifest stage: the data rows of the label CSVs."""
ROWS_TAG = "refused_rows"
"""Tagged output of label rows refused after the join (main quarantine: images)."""
SKIPPED_TAG = "skipped"
"""Tagged output of label rows whose image ``--path_match_regex`` leaves out."""
SIZES_TAG = "source_sizes"
"""Tagged output of `TransformFn`: a `PixelSizes` per bundle, the sources of its examples."""


class ParseLabelRowFn(beam.DoFn):
    """`CsvRow` -> ``(path, LabelRecord)``; a row that does not parse is quarantined.

    The row of an image that ``--path_match_regex`` leaves out goes to
    `SKIPPED_TAG` (its path): it is skipped with its image, not quarantined
    as a label row without an image.
    """

    def __init__(self, spec: IngestSpec, path_match_regex: str | None = None) -> None:
        super().__init__()
        self._spec = spec
        self._regex = path_match_regex

    def setup(self) -> None:
        """Compiles the path filter once per worker."""
        self._pattern = re.compile(self._regex) if self._regex is not None else None

    def process(self, row: CsvRow) -> Iterator[Any]:
        """Parses one row."""
        path = row.cells.get(self._spec.path_column) or ""
        if self._pattern is not None and not self._pattern.fullmatch(path):
            yield beam.pvalue.TaggedOutput(SKIPPED_TAG, path)
            return
        if row.problem is not None:
            yield _refuse(path, Stage.PARSE_LABELS, Reason.BAD_LABEL_ROW, row.problem, row.where)
            return
        try:
            key, labels = self._spec.parse_label_row(row.cells, row.where)
        except SourceRowError as e:
            reason = Reason.UNKNOWN_CODE if e.unknown_code else Reason.BAD_LABEL_ROW
            yield _refuse(path, Stage.PARSE_LABELS, reason, str(e), row.where)
            return
        except ValueError as e:
            yield _refuse(path, Stage.PARSE_LABELS, Reason.UNPARSEABLE_PATH, str(e), row.where)
            return
        canonical = self._spec.format_path(key)
        yield canonical, LabelRecord(row.where, key, labels)


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


class DecideFn(beam.DoFn):
    """``(path, ([images], [rows]))``, packed -> the pairs that make examples.

    Refused images go to the quarantine output, refused rows to `ROWS_TAG`.
    """

    def __init__(self, codec: JoinCodec, progress: Progress) -> None:
        super().__init__()
        self._codec = codec
        self._progress = progress

    def process(self, element: tuple[str, Sequence[Iterable[Any]]]) -> Iterator[Any]:
        """Applies `decide` to one path."""
        path, (packed_images, packed_rows) = element
        images = [self._codec.unpack_image(packed) for packed in packed_images]
        rows = [self._codec.unpack_row(packed) for packed in packed_rows]
        decision = decide(path, images, rows)
        if decision.images:
            self._progress.done(len(decision.images))
        for record in decision.images:
            yield beam.pvalue.TaggedOutput(QUARANTINE_TAG, record)
        for record in decision.rows:
            yield beam.pvalue.TaggedOutput(ROWS_TAG, record)
        if decision.example is not None:
            yield path, decision.example


class TransformFn(beam.DoFn):
    """``(path, (ImageItem, LabelRecord))`` -> `Example`, reading the bytes here.

    An `ImageItem`'s ref is a tar `MemberRef` (read by range), a file URI
    (read whole), an already-transformed image (`Transformed`), or a `Refused` marker.

    An image that does not decode is quarantined (main quarantine output) and
    so is its label row (`ROWS_TAG`), with the same reason. So is one whose
    declared DICOM attributes (`columns`) do not fit their columns; those that
    do are set in the example's key and labels. The sources' pixel sizes of
    the examples of each bundle are counted, and the count emitted at its end
    (`SIZES_TAG`).

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
        if self._sizes.counts:
            yield beam.pvalue.TaggedOutput(SIZES_TAG, GlobalWindows.windowed_value(self._sizes))
        self._handles.close()

    def _emit(self, pending: _Pending) -> Iterator[Any]:
        path, item, record, result = pending
        # The row's key: it may hold key columns the image's path does not.
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
        yield Example(image=done.image, path=path, key=key, labels=labels)

    def _refuse(
        self, path: str, item: ImageItem[Any], record: LabelRecord[Any, Any], e: ImageError
    ) -> Iterator[Any]:
        self._refused.inc()
        self._progress.done()
        yield _refuse(path, Stage.DECODE, e.reason, e.detail, item.source)
        detail = f"its image {item.source} was refused: {e.detail}"
        row = Quarantined(path, Stage.DECODE, e.reason, detail, record.where)
        yield beam.pvalue.TaggedOutput(ROWS_TAG, row)

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
    """What `JoinAndTransform` and `TransformImages` return."""

    examples: beam.PCollection
    """`Example` per image with exactly one label row, resized."""
    image_refusals: beam.PCollection
    """`Quarantined` images (no labels, duplicates, undecodable, ...)."""
    row_refusals: beam.PCollection
    """`Quarantined` label rows (no image, duplicates, image refused, ...)."""
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
            QUARANTINE_TAG, ROWS_TAG, SIZES_TAG, main="examples"
        )
        return LabelledImages(
            transformed.examples,
            transformed[QUARANTINE_TAG],
            transformed[ROWS_TAG],
            transformed[SIZES_TAG] | "PixelSizes" >> CombinePixelSizes(),
        )


class JoinAndTransform(beam.PTransform):
    """``(images, rows)`` keyed by path -> resized examples and every refusal.

    Args:
        label: Names the run in progress lines.
        image: The image transform.
        run_id: Identifies the run (progress counters are per run).
        codec: Packs the records that the join holds (by default: keys and
            labels that are plain values already).
        columns: The data set's declared DICOM header columns, if any.
    """

    def __init__(
        self,
        label: str,
        image: ImageSpec,
        run_id: str,
        codec: JoinCodec | None = None,
        columns: DicomColumns | None = None,
    ) -> None:
        super().__init__()
        self._transform = TransformImages(label, image, run_id, columns)
        self._progress = self._transform.progress
        self._codec = codec or JoinCodec()

    def expand(
        self, inputs: tuple[beam.PCollection | Sequence[beam.PCollection], beam.PCollection]
    ) -> LabelledImages:
        """Joins on path (small packed references only), decides, then reads and transforms.

        Images may come as several collections (tar members, files): each is
        packed before they meet, since the local runner holds a Flatten of
        several inputs in memory whole.
        """
        images, rows = inputs
        parts = [images] if isinstance(images, beam.PCollection) else list(images)
        packed = [
            part | f"PackImages{i or ''}" >> beam.Map(pack_found, self._codec, self._progress)
            for i, part in enumerate(parts)
        ]
        # A tuple, not a dict: Beam tags each value held with its input's name,
        # and a one-character name ("0", "1") is a string CPython shares.
        joined = (
            packed[0] if len(packed) == 1 else packed | "AllImages" >> beam.Flatten(),
            rows | "PackRows" >> beam.Map(self._codec.pack_row),
        ) | "JoinOnPath" >> beam.CoGroupByKey()
        decided = joined | "Decide" >> beam.ParDo(
            DecideFn(self._codec, self._progress)
        ).with_outputs(QUARANTINE_TAG, ROWS_TAG, main="pairs")
        transformed = decided.pairs | "Transform" >> self._transform
        return LabelledImages(
            transformed.examples,
            (decided[QUARANTINE_TAG], transformed.image_refusals)
            | "ImageRefusals" >> beam.Flatten(),
            (decided[ROWS_TAG], transformed.row_refusals) | "RowRefusals" >> beam.Flatten(),
            transformed.pixel_sizes,
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
