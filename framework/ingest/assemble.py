"""Labels per study: images + per-image tables + study label rows -> one label record per image.

For data sets whose image path holds only part of an image's key and whose
labels come per study (MIMIC-CXR-JPG 2.x: metadata and split tables keyed by
``dicom_id``, CheXpert/NegBio labels keyed by ``study_id``), see
`StudyLabels`. Only small values travel: image references (never their
bytes) and parsed rows, packed into bytes for each grouping (`compact`).

1. `AssembleStudyLabels` parses the table and label rows, joins each image
   on its path with one row of every table (`CoGroupByKey`), builds its full
   key, then joins it on its study with the study's label row. It yields
   ``(path, (ImageItem, LabelRecord))`` per image, ready for
   `TransformImages` (no third grouping: each path already has exactly one
   image and one record); an image without a table row is refused with the
   table's reason (``missing_metadata``, ``missing_split``), an image whose
   study has no label row gets the absent labels.
2. `AccountStudyRows`, after `TransformImages`, decides what became of the
   rows each image used: written with it, or quarantined with its image's
   reason. A label row is written when at least one image of its study is.

Every CSV row ends written or quarantined, under the manifest stage
``<table>_rows`` or ``label_rows``; refusals travel as ``(stage,
Quarantined)`` pairs. The leakage check (subjects found in more than one
split) and the count of images written without study labels travel as
notes (JSON lines), reported by the pipeline; no data is dropped for them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import apache_beam as beam
import attrs

from datathon_etl.framework.ingest.compact import (
    JoinCodec,
    Wheres,
    class_codec,
    from_bytes,
    to_bytes,
)
from datathon_etl.framework.ingest.join import ImageItem, LabelRecord
from datathon_etl.framework.ingest.spec import IngestSpec, StudyLabels
from datathon_etl.framework.ingest.transforms import (
    IMAGES,
    LABEL_ROWS,
    LabelledImages,
    Progress,
    TransformImages,
    pack_found,
)
from datathon_etl.framework.manifest import Outcome, Tally
from datathon_etl.framework.quarantine import Quarantined, Reason, Stage
from datathon_etl.framework.run_records import TallyEach
from datathon_etl.framework.schema import SourceRowError
from datathon_etl.framework.sources.csv_rows import CsvRow, ReadCsvRows

__all__ = [
    "ABSENT_LABELS_NOTE",
    "LEAKAGE_NOTE",
    "AccountStudyRows",
    "AssembleStudyLabels",
    "AssemblyCodec",
    "AttachedStudy",
    "Choice",
    "LabelPerStudy",
    "RefusedRow",
    "StudyAccounts",
    "StudyAssembly",
    "StudyLabelled",
    "TableRow",
    "choose",
    "csv_roles",
    "table_stage",
]

REFUSED_TAG = "refused"
"""Tagged output of ``(stage, Quarantined)`` pairs."""
ATTACHED_TAG = "attached"
NOTES_TAG = "notes"
SUBJECTS_TAG = "subjects"

LEAKAGE_NOTE = "subject_in_several_splits"
"""Note kind: one subject found in more than one split (``subject``, ``splits``)."""
ABSENT_LABELS_NOTE = "images_without_study_labels"
"""Note kind: images written with every label absent (``count``)."""


def table_stage(name: str) -> str:
    """The manifest stage of a table's rows: ``metadata`` -> ``metadata_rows``."""
    return f"{name}_rows"


@attrs.frozen
class TableRow:
    """One parsed CSV row: where it is and its value."""

    where: str
    value: Any


@attrs.frozen
class RefusedRow:
    """A row that did not parse but whose key did: it refuses what it joins with.

    The row itself is quarantined where it was parsed; this marker only
    makes sure its image (or study) is not used as if the row were absent.
    """

    where: str
    reason: Reason
    detail: str


@attrs.frozen
class Choice:
    """What one image (or study) makes of its rows in one table.

    Attributes:
        used: The row that goes on, if any.
        refusal: (reason, detail) when the rows refuse the image: none where
            one is needed, conflicting ones, or one that did not parse.
        extras: Identical duplicates of `used`, refused as ``duplicate_label_row``.
    """

    used: TableRow | None
    refusal: tuple[Reason, str] | None = None
    extras: tuple[TableRow, ...] = ()


def choose(rows: Iterable[TableRow | RefusedRow], table: str, missing: Reason | None) -> Choice:
    """Picks the row of one image (or study) in one table, never a product.

    Args:
        rows: The rows that share the image's path (or the study).
        table: The table's name, for details.
        missing: The reason to refuse the image for when there is no row;
            None when no row is fine (a study without labels).

    Returns:
        The choice: one row (identical duplicates aside), or a refusal.
    """
    ordered = sorted(rows, key=lambda r: r.where)
    refused = [r for r in ordered if isinstance(r, RefusedRow)]
    if refused:
        bad = refused[0]
        return Choice(None, (bad.reason, f"its {table} row {bad.where} was refused: {bad.detail}"))
    good = [r for r in ordered if isinstance(r, TableRow)]
    if not good:
        return Choice(None, (missing, f"no {table} row") if missing is not None else None)
    first, *rest = good
    if any(r.value != first.value for r in rest):
        wheres = ", ".join(r.where for r in good)
        return Choice(None, (Reason.DUPLICATE_LABEL_ROW, f"conflicting {table} rows ({wheres})"))
    return Choice(first, extras=tuple(rest))


def _refuse(stage: str, record: Quarantined) -> Any:
    return beam.pvalue.TaggedOutput(REFUSED_TAG, (stage, record))


class ParseRowFn(beam.DoFn):
    """`CsvRow` -> ``(join key, TableRow)``; a bad row is refused (and marks its key).

    The rows go on packed (`AssemblyCodec.pack_row`).

    Args:
        parse: (cells, ``file:line N``) -> (join key, value).
        row_key: cells -> join key from the id cells alone (ValueError if not).
        stage: The rows' manifest stage.
        codec: Packs the rows.
        value_type: The attrs class of the values (`class_codec`), or None.
    """

    def __init__(
        self, parse: Any, row_key: Any, stage: str, codec: AssemblyCodec, value_type: type | None
    ) -> None:
        super().__init__()
        self._parse = parse
        self._row_key = row_key
        self._stage = stage
        self._codec = codec
        self._value_type = value_type

    def process(self, row: CsvRow) -> Iterator[Any]:
        """Parses one row."""
        try:
            key: str | None = self._row_key(row.cells)
        except ValueError:
            key = None
        if row.problem is not None:
            reason, detail = Reason.BAD_LABEL_ROW, row.problem
        else:
            try:
                joined, value = self._parse(row.cells, row.where)
            except SourceRowError as e:
                reason = Reason.UNKNOWN_CODE if e.unknown_code else Reason.BAD_LABEL_ROW
                detail = str(e)
            except ValueError as e:
                reason, detail = Reason.BAD_LABEL_ROW, str(e)
            else:
                yield joined, self._codec.pack_row(TableRow(row.where, value), self._value_type)
                return
        record = Quarantined(key or "", Stage.PARSE_LABELS, reason, detail, row.where)
        yield _refuse(self._stage, record)
        if key is not None:
            refused = RefusedRow(row.where, reason, detail)
            yield key, self._codec.pack_row(refused, self._value_type)


@attrs.frozen
class _Assembled:
    """An image with its full key and the table rows (stage, where) it was built from."""

    path: str
    item: ImageItem[Any]
    rows: tuple[tuple[str, str], ...]


@attrs.frozen
class _RefusedImage:
    """An image refused when joined with its table rows: its study's rows share the reason."""

    path: str
    reason: Reason
    detail: str


@attrs.frozen
class AttachedStudy:
    """A study's images that went on to be read, and the rows they used.

    Attributes:
        images: (image path, its table rows as (stage, where)) per image.
        label_where: The study's label row, or None when it has none.
    """

    images: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
    label_where: str | None


_ROW, _REFUSED_ROW, _IMAGE, _REFUSED_IMAGE = range(4)


@attrs.frozen
class AssemblyCodec:
    """Packs the records of the assembly's groupings into bytes (see `compact`).

    Attributes:
        path_key_type: The attrs class of an image path's partial key.
        key_type: The attrs class of an image's full key.
        wheres: Packs the rows' ``where`` (every table and label file).
    """

    path_key_type: type | None
    key_type: type | None
    wheres: Wheres

    @property
    def found(self) -> JoinCodec:
        """Packs the images found, keyed by their path's partial key."""
        return JoinCodec(self.path_key_type)

    def pack_row(self, row: TableRow | RefusedRow, value_type: type | None) -> bytes:
        """A parsed row (or the marker of one refused) -> bytes, its value by `class_codec`."""
        where = self.wheres.pack(row.where)
        if isinstance(row, TableRow):
            pack_value, _ = class_codec(value_type)
            return to_bytes((_ROW, where, pack_value(row.value)))
        return to_bytes((_REFUSED_ROW, where, str(row.reason), row.detail))

    def unpack_row(self, packed: bytes, value_type: type | None) -> TableRow | RefusedRow:
        """What `pack_row` packed -> the row."""
        kind, where, *values = from_bytes(packed)
        if kind == _ROW:
            _, unpack_value = class_codec(value_type)
            return TableRow(self.wheres.unpack(where), unpack_value(values[0]))
        return RefusedRow(self.wheres.unpack(where), Reason(values[0]), values[1])

    def _pack_rows(self, rows: tuple[tuple[str, str], ...]) -> tuple[Any, ...]:
        return tuple((stage, self.wheres.pack(where)) for stage, where in rows)

    def _unpack_rows(self, rows: tuple[Any, ...]) -> tuple[tuple[str, str], ...]:
        return tuple((stage, self.wheres.unpack(where)) for stage, where in rows)

    def pack_image(self, image: _Assembled | _RefusedImage) -> bytes:
        """An image joined with its table rows (or refused there) -> bytes."""
        if isinstance(image, _Assembled):
            _, item = JoinCodec(self.key_type).pack_image((image.path, image.item))
            return to_bytes((_IMAGE, image.path, item, self._pack_rows(image.rows)))
        return to_bytes((_REFUSED_IMAGE, image.path, str(image.reason), image.detail))

    def unpack_image(self, packed: bytes) -> _Assembled | _RefusedImage:
        """What `pack_image` packed -> the image."""
        kind, path, *values = from_bytes(packed)
        if kind == _IMAGE:
            item = JoinCodec(self.key_type).unpack_image(values[0])
            return _Assembled(path, item, self._unpack_rows(values[1]))
        return _RefusedImage(path, Reason(values[0]), values[1])

    def pack_study(self, study: AttachedStudy) -> bytes:
        """A study's attached images and rows -> bytes."""
        images = tuple((path, self._pack_rows(rows)) for path, rows in study.images)
        where = None if study.label_where is None else self.wheres.pack(study.label_where)
        return to_bytes((images, where))

    def unpack_study(self, packed: bytes) -> AttachedStudy:
        """What `pack_study` packed -> the study."""
        images, where = from_bytes(packed)
        return AttachedStudy(
            tuple((path, self._unpack_rows(rows)) for path, rows in images),
            None if where is None else self.wheres.unpack(where),
        )


class _ImageFn(beam.DoFn):
    """``(path, ([images], [rows of each table]...))`` -> ``(study, _Assembled)``, or refusals.

    A refused image also goes on as ``(study, _RefusedImage)``, so that its
    study's label row is refused for the same reason. Both go on packed; an
    assembled image's (subject, split) goes to `SUBJECTS_TAG`.
    """

    def __init__(self, study: StudyLabels, codec: AssemblyCodec, progress: Progress) -> None:
        super().__init__()
        self._study = study
        self._codec = codec
        self._progress = progress

    def process(self, element: tuple[str, Sequence[Iterable[Any]]]) -> Iterator[Any]:
        """Joins one image with its table rows."""
        for output in self._assemble(element):
            if isinstance(output, beam.pvalue.TaggedOutput):
                yield output
                continue
            study, image = output
            yield study, self._codec.pack_image(image)
            if isinstance(image, _Assembled):
                yield beam.pvalue.TaggedOutput(
                    SUBJECTS_TAG, self._study.subject_split(image.item.key)
                )

    def _assemble(self, element: tuple[str, Sequence[Iterable[Any]]]) -> Iterator[Any]:
        path, (found, *table_rows) = element
        tables = self._study.tables
        images: list[ImageItem[Any]] = sorted(
            (self._codec.found.unpack_image(packed) for packed in found),
            key=lambda i: i.source,
        )
        rows = [
            [self._codec.unpack_row(r, t.row_type) for r in packed]
            for t, packed in zip(tables, table_rows, strict=True)
        ]
        good = [
            (table_stage(t.name), r)
            for t, table_rows in zip(tables, rows, strict=True)
            for r in table_rows
            if isinstance(r, TableRow)
        ]
        if len(images) != 1:
            if images:
                sources = ", ".join(i.source for i in images)
                reason = Reason.DUPLICATE_IMAGE
                detail = f"{len(images)} images share this path ({sources}); none was used"
            else:
                reason, detail = Reason.LABELS_WITHOUT_IMAGE, "no image has this path"
            self._progress.done(len(images))
            for item in images:
                yield _refuse(IMAGES, Quarantined(path, Stage.JOIN, reason, detail, item.source))
            for stage, row in good:
                yield _refuse(stage, Quarantined(path, Stage.JOIN, reason, detail, row.where))
            if images:
                yield self._study.study_of(images[0].key), _RefusedImage(path, reason, detail)
            return
        (image,) = images
        choices = [
            choose(table_rows, t.name, t.missing)
            for t, table_rows in zip(tables, rows, strict=True)
        ]
        refusal = next((c.refusal for c in choices if c.refusal is not None), None)
        if refusal is not None:
            reason, detail = refusal
            self._progress.done()
            yield _refuse(IMAGES, Quarantined(path, Stage.JOIN, reason, detail, image.source))
            for stage, row in good:
                yield _refuse(stage, Quarantined(path, Stage.JOIN, reason, detail, row.where))
            yield self._study.study_of(image.key), _RefusedImage(path, reason, detail)
            return
        used: list[TableRow] = []
        for t, choice in zip(tables, choices, strict=True):
            assert choice.used is not None  # no refusal: every table has its row
            used.append(choice.used)
            detail = f"identical to {choice.used.where}, which was used"
            for extra in choice.extras:
                record = Quarantined(
                    path, Stage.JOIN, Reason.DUPLICATE_LABEL_ROW, detail, extra.where
                )
                yield _refuse(table_stage(t.name), record)
        key = self._study.image_key(image.key, *(row.value for row in used))
        item = ImageItem(image.source, key, image.ref)
        stages = tuple(
            (table_stage(t.name), row.where) for t, row in zip(tables, used, strict=True)
        )
        yield self._study.study_of(key), _Assembled(path, item, stages)


class _StudyFn(beam.DoFn):
    """``(study, ([images], [label rows]))`` -> each image with its label record.

    Main output ``(path, (ImageItem, LabelRecord))``; `ATTACHED_TAG`
    ``(study, AttachedStudy)``; `REFUSED_TAG` refusals.
    The records' ``where`` is the study, so that refusals after the join
    (their ``source``) lead back to it.
    """

    def __init__(
        self,
        study: StudyLabels,
        codec: AssemblyCodec,
        labels_type: type | None,
        progress: Progress,
    ) -> None:
        super().__init__()
        self._study = study
        self._codec = codec
        self._labels_type = labels_type
        self._progress = progress

    def process(self, element: tuple[str, Sequence[Iterable[Any]]]) -> Iterator[Any]:
        """Gives each image of one study the study's labels."""
        study, (packed_images, packed_labels) = element
        found = sorted(
            (self._codec.unpack_image(packed) for packed in packed_images), key=lambda a: a.path
        )
        images: list[_Assembled] = [a for a in found if isinstance(a, _Assembled)]
        labels = [self._codec.unpack_row(packed, self._labels_type) for packed in packed_labels]
        good = sorted((r for r in labels if isinstance(r, TableRow)), key=lambda r: r.where)
        if not images:
            # Its images were all refused (their reason goes on), or there were none.
            refused = next((r for r in found if isinstance(r, _RefusedImage)), None)
            reason, detail = Reason.LABELS_WITHOUT_IMAGE, "no image of this study was found"
            if refused is not None:
                reason = refused.reason
                detail = f"no image of this study was used ({refused.path}: {refused.detail})"
            for row in good:
                yield _refuse(LABEL_ROWS, Quarantined(study, Stage.JOIN, reason, detail, row.where))
            return
        choice = choose(labels, "label", None)
        if choice.refusal is not None:
            reason, detail = choice.refusal
            for row in good:
                yield _refuse(LABEL_ROWS, Quarantined(study, Stage.JOIN, reason, detail, row.where))
            self._progress.done(len(images))
            for image in images:
                record = Quarantined(image.path, Stage.JOIN, reason, detail, image.item.source)
                yield _refuse(IMAGES, record)
                for stage, where in image.rows:
                    yield _refuse(stage, Quarantined(image.path, Stage.JOIN, reason, detail, where))
            return
        if choice.used is not None:
            detail = f"identical to {choice.used.where}, which was used"
            for extra in choice.extras:
                record = Quarantined(
                    study, Stage.JOIN, Reason.DUPLICATE_LABEL_ROW, detail, extra.where
                )
                yield _refuse(LABEL_ROWS, record)
        values = choice.used.value if choice.used is not None else self._study.no_labels
        for image in images:
            yield image.path, (image.item, LabelRecord(study, image.item.key, values))
        attached = AttachedStudy(
            tuple((image.path, image.rows) for image in images),
            choice.used.where if choice.used is not None else None,
        )
        yield beam.pvalue.TaggedOutput(ATTACHED_TAG, (study, self._codec.pack_study(attached)))


class StudyAssembly(NamedTuple):
    """What `AssembleStudyLabels` returns."""

    pairs: beam.PCollection
    """``(path, (ImageItem, LabelRecord))`` per image that has its table rows: the
    image with its full key, and its study's labels."""
    attached: beam.PCollection
    """``(study, packed AttachedStudy)``: the rows whose fate depends on their images'."""
    refusals: beam.PCollection
    """``(stage, Quarantined)``: refused images and rows."""
    tallies: beam.PCollection
    """`Tally` of the rows read (inputs)."""
    notes: beam.PCollection
    """JSON lines: subjects found in more than one split."""


class AssembleStudyLabels(beam.PTransform):
    """``(path, ImageItem)`` with partial keys -> images with full keys, and their labels.

    Args:
        spec: The dataset's ingestion spec; its ``study_labels`` must be set.
        table_files: Table name -> its CSV URIs.
        label_files: The label CSV URIs (the chosen label source).
        progress: Counts the images found, and those refused here as done.
    """

    def __init__(
        self,
        spec: IngestSpec,
        table_files: Mapping[str, Sequence[str]],
        label_files: Sequence[str],
        progress: Progress,
    ) -> None:
        super().__init__()
        self._progress = progress
        if spec.study_labels is None:
            raise ValueError(f"{spec.dataset}: labels are not per study")
        self._spec = spec
        self.study = spec.study_labels
        self._table_files = {name: list(uris) for name, uris in table_files.items()}
        self._label_files = list(label_files)
        every_file = [uri for uris in self._table_files.values() for uri in uris]
        self.codec = AssemblyCodec(
            self.study.path_key_type,
            spec.key_type,
            Wheres(tuple(every_file + self._label_files)),
        )

    def _read(
        self,
        p: beam.Pipeline,
        label: str,
        uris: list[str],
        parse: Any,
        stage: str,
        value_type: type | None,
    ) -> tuple[beam.PCollection, beam.PCollection, beam.PCollection]:
        # A handful of files: spreading them is not worth a shuffle's start-up cost.
        files = p | f"{label}Files" >> beam.Create(uris, reshuffle=False)
        rows = files | f"Read{label}" >> ReadCsvRows()
        parsed = rows | f"Parse{label}" >> beam.ParDo(
            ParseRowFn(parse, self.study.row_key, stage, self.codec, value_type)
        ).with_outputs(REFUSED_TAG, main="rows")
        return (
            parsed.rows,
            parsed[REFUSED_TAG],
            rows | f"Tally{label}" >> TallyEach(stage, Outcome.INPUT),
        )

    def expand(self, images: Sequence[beam.PCollection]) -> StudyAssembly:
        """Joins on the image path, then on the study (images from each input: tars, files)."""
        p = images[0].pipeline
        refusals, tallies = [], []
        # Packed before they meet: the local runner holds a Flatten of several inputs whole.
        packed = [
            part | f"PackImages{i or ''}" >> beam.Map(pack_found, self.codec.found, self._progress)
            for i, part in enumerate(images)
        ]
        by_path = [packed[0] if len(packed) == 1 else packed | "AllImages" >> beam.Flatten()]
        for table in self.study.tables:
            name = table.name.capitalize()
            rows, refused, tally = self._read(
                p,
                name,
                self._table_files[table.name],
                table.parse_row,
                table_stage(table.name),
                table.row_type,
            )
            by_path.append(rows)
            refusals.append(refused)
            tallies.append(tally)
        labels, refused, tally = self._read(
            p,
            "Labels",
            self._label_files,
            self._spec.parse_label_row,
            LABEL_ROWS,
            self._spec.labels_type,
        )
        refusals.append(refused)
        tallies.append(tally)

        # Joins take tuples, not dicts: Beam tags each value held with its input's
        # name, and a one-character name ("0", "1") is a string CPython shares.
        assembled = (
            tuple(by_path)
            | "JoinOnPath" >> beam.CoGroupByKey()
            | "AssembleImages"
            >> beam.ParDo(_ImageFn(self.study, self.codec, self._progress)).with_outputs(
                REFUSED_TAG, SUBJECTS_TAG, main="images"
            )
        )
        refusals.append(assembled[REFUSED_TAG])
        labelled = (
            (assembled.images, labels)
            | "JoinOnStudy" >> beam.CoGroupByKey()
            | "LabelImages"
            >> beam.ParDo(
                _StudyFn(self.study, self.codec, self._spec.labels_type, self._progress)
            ).with_outputs(ATTACHED_TAG, REFUSED_TAG, main="pairs")
        )
        refusals.append(labelled[REFUSED_TAG])

        notes = (
            assembled[SUBJECTS_TAG]
            | "DistinctSubjectSplits" >> beam.Distinct()
            | "SplitsPerSubject" >> beam.GroupByKey()
            | "Leakage" >> beam.FlatMap(_leakage)
        )
        return StudyAssembly(
            pairs=labelled.pairs,
            attached=labelled[ATTACHED_TAG],
            refusals=refusals | "AssemblyRefusals" >> beam.Flatten(),
            tallies=tallies | "AssemblyTallies" >> beam.Flatten(),
            notes=notes,
        )


def _leakage(element: tuple[str, Iterable[str]]) -> Iterator[str]:
    subject, splits = element
    found = sorted(set(splits))
    if len(found) > 1:
        yield json.dumps({"note": LEAKAGE_NOTE, "subject": subject, "splits": found})


class _AccountFn(beam.DoFn):
    """``(study, ([attached studies], [written paths], [refusals]))`` -> each used row's outcome."""

    def __init__(self, codec: AssemblyCodec) -> None:
        super().__init__()
        self._codec = codec

    def process(self, element: tuple[str, Sequence[Iterable[Any]]]) -> Iterator[Any]:
        """Rows of written images are written; the others share their image's refusal."""
        study, (packed_studies, written_paths, refusals) = element
        written = set(written_paths)
        refused: dict[str, Quarantined] = {q.path: q for q in refusals}
        for attached in map(self._codec.unpack_study, packed_studies):
            first_refusal: Quarantined | None = None
            for path, rows in attached.images:
                if path in written:
                    for stage, _ in rows:
                        yield Tally(stage, Outcome.WRITTEN)
                    continue
                image = refused.get(path)
                if image is None:  # cannot happen: TransformImages writes or refuses each
                    continue
                first_refusal = first_refusal or image
                for stage, where in rows:
                    record = Quarantined(path, image.stage, image.reason, image.detail, where)
                    yield _refuse(stage, record)
            done = sum(1 for path, _ in attached.images if path in written)
            if attached.label_where is None:
                if done:
                    yield beam.pvalue.TaggedOutput(NOTES_TAG, done)
            elif done:
                yield Tally(LABEL_ROWS, Outcome.WRITTEN)
            elif first_refusal is not None:
                detail = f"no image of this study was written ({first_refusal.detail})"
                record = Quarantined(
                    study, first_refusal.stage, first_refusal.reason, detail, attached.label_where
                )
                yield _refuse(LABEL_ROWS, record)


class StudyAccounts(NamedTuple):
    """What `AccountStudyRows` returns."""

    tallies: beam.PCollection
    """`Tally` of the rows written."""
    refusals: beam.PCollection
    """``(stage, Quarantined)``: rows whose images were refused after the join."""
    notes: beam.PCollection
    """JSON lines: the number of images written without study labels."""


class AccountStudyRows(beam.PTransform):
    """``(attached, examples, refused records)`` -> what became of the rows each image used.

    Args:
        study_of: Full key -> study (`StudyLabels.study_of`).
        codec: Unpacks the attached studies.
    """

    def __init__(self, study_of: Any, codec: AssemblyCodec) -> None:
        super().__init__()
        self._study_of = study_of
        self._codec = codec

    def expand(
        self, inputs: tuple[beam.PCollection, beam.PCollection, beam.PCollection]
    ) -> StudyAccounts:
        """Joins the attached rows with the images' outcomes on the study."""
        attached, examples, row_refusals = inputs
        study_of = self._study_of
        accounted = (
            (
                attached,
                examples | "WrittenStudy" >> beam.Map(lambda e: (study_of(e.key), e.path)),
                # A record refused after the join names its study as its source.
                row_refusals | "RefusedStudy" >> beam.Map(lambda q: (q.source, q)),
            )
            | "JoinOutcomes" >> beam.CoGroupByKey()
            | "Account"
            >> beam.ParDo(_AccountFn(self._codec)).with_outputs(
                REFUSED_TAG, NOTES_TAG, main="tallies"
            )
        )
        notes = (
            accounted[NOTES_TAG]
            | "CountAbsent" >> beam.CombineGlobally(sum)
            | "AbsentNote"
            >> beam.Map(lambda n: json.dumps({"note": ABSENT_LABELS_NOTE, "count": n}))
        )
        return StudyAccounts(accounted.tallies, accounted[REFUSED_TAG], notes)


class StudyLabelled(NamedTuple):
    """What `LabelPerStudy` returns."""

    labelled: LabelledImages
    """`TransformImages`' output (its row refusals are per image, already accounted)."""
    refusals: beam.PCollection
    """``(stage, Quarantined)``: every refused image and row of the assembly and accounting."""
    tallies: beam.PCollection
    """`Tally` of the rows: inputs, written, quarantined (images' refusals included)."""
    notes: beam.PCollection
    """JSON lines: the leakage check and the images written without study labels."""


class LabelPerStudy(beam.PTransform):
    """Keyed images -> transformed examples labelled per study, with every row accounted for.

    `AssembleStudyLabels`, then the given `TransformImages`, then `AccountStudyRows`.

    Args:
        spec: The dataset's ingestion spec; its ``study_labels`` must be set.
        table_files: Table name -> its CSV URIs.
        label_files: The label CSV URIs (the chosen label source).
        transform: The step that reads and transforms the assembled images.
    """

    def __init__(
        self,
        spec: IngestSpec,
        table_files: Mapping[str, Sequence[str]],
        label_files: Sequence[str],
        transform: TransformImages,
    ) -> None:
        super().__init__()
        self._assemble = AssembleStudyLabels(spec, table_files, label_files, transform.progress)
        self._account = AccountStudyRows(self._assemble.study.study_of, self._assemble.codec)
        self._transform = transform

    def expand(self, images: Sequence[beam.PCollection]) -> StudyLabelled:
        """Assembles, then transforms, then accounts for the rows."""
        assembly = images | "Assemble" >> self._assemble
        labelled = assembly.pairs | "Transform" >> self._transform
        accounts = (
            assembly.attached,
            labelled.examples,
            labelled.row_refusals,
        ) | "AccountRows" >> self._account
        refusals = (assembly.refusals, accounts.refusals) | "Refusals" >> beam.Flatten()
        refused = refusals | "TallyRefusals" >> beam.MapTuple(
            lambda stage, record: Tally(stage, Outcome.QUARANTINED, str(record.reason))
        )
        tallies = (assembly.tallies, accounts.tallies, refused) | "Tallies" >> beam.Flatten()
        notes = (assembly.notes, accounts.notes) | "Notes" >> beam.Flatten()
        return StudyLabelled(labelled, refusals, tallies, notes)


def csv_roles(
    study: StudyLabels, uris: Iterable[str], labels_source: str | None
) -> tuple[dict[str, tuple[str, ...]], tuple[str, ...]]:
    """Tells the CSVs apart by name: each table's files, and the chosen label files.

    A file belongs to the table (or label source) its name ends with, less
    ``.csv`` or ``.csv.gz``: ``mimic-cxr-2.0.0-metadata.csv.gz`` is the
    ``metadata`` table's. Files of the label sources not chosen are left out.

    Args:
        study: The dataset's study-label declaration.
        uris: The CSV files.
        labels_source: The label source to read (None: the first declared).

    Returns:
        (table name -> its files, the chosen label source's files).

    Raises:
        ValueError: An unknown label source, a file no role's name ends, or a
            table or the chosen source without a file.
    """
    source = labels_source or study.label_sources[0]
    if source not in study.label_sources:
        raise ValueError(
            f"--labels_source: {source!r} is not one of {', '.join(study.label_sources)}"
        )
    names = [t.name for t in study.tables] + list(study.label_sources)
    found: dict[str, list[str]] = {name: [] for name in names}
    for uri in sorted(uris):
        stem = re.sub(r"\.csv(\.gz)?$", "", uri.rsplit("/", 1)[-1].lower())
        role = next((n for n in names if stem.endswith(n.lower())), None)
        if role is None:
            raise ValueError(
                f"--input_csv: {uri}: its name ends in none of {', '.join(names)} "
                "(before .csv or .csv.gz)"
            )
        found[role].append(uri)
    for name in [t.name for t in study.tables] + [source]:
        if not found[name]:
            raise ValueError(f"--input_csv: no {name} file (a name ending in {name}.csv[.gz])")
    tables = {t.name: tuple(found[t.name]) for t in study.tables}
    return tables, tuple(found[source])
