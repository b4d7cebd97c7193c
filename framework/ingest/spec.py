"""`IngestSpec`: what one dataset supplies to the generic ingestion pipeline.

Generated entry points (``generated/<dataset>/ingest.py``) build it from the
dataset's parsing module and its generated artifacts; nothing else in the
pipeline knows which dataset it is running.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import pyarrow as pa

from datathon_etl.framework.ingest.leakage import LeakageCheck
from datathon_etl.framework.quarantine import Reason
from datathon_etl.framework.schema.convert import source_columns
from datathon_etl.framework.schema.example import Example
from datathon_etl.framework.tfrecords import FeatureSpec

__all__ = ["GroupLabels", "ImageTable", "ImageTables", "IngestSpec", "SplitLists"]


@attrs.frozen
class ImageTable:
    """A per-image CSV table (MIMIC-CXR-JPG's metadata, split; ISIC's metadata): one row per image.

    Attributes:
        name: The table's name. Its files are the ``--input_csv`` files whose
            name, less ``.csv`` or ``.csv.gz``, ends with it
            (``mimic-cxr-2.0.0-metadata.csv.gz``); its manifest stage is
            ``<name>_rows``.
        columns: Columns each of its CSVs must have.
        parse_row: (CSV row, ``file:line N``) -> (the image's canonical path,
            the row's value); raises ValueError (`SourceRowError` for a bad cell).
            None: the row is read as `row_type` declares (`declared`).
        missing: Why an image without a row in this table is quarantined;
            None for an optional table (the image goes on, its value None).
        row_type: The attrs class of a row's value (the join packs rows by
            its fields), the enum of a coded value, or None for plain values.
    """

    name: str
    columns: tuple[str, ...]
    parse_row: Callable[[Mapping[str, str | None], str], tuple[str, Any]] | None
    missing: Reason | None = attrs.field(converter=attrs.converters.optional(Reason))
    row_type: type | None = None

    @classmethod
    def declared(cls, name: str, row_type: type, missing: Reason | None) -> ImageTable:
        """A table whose rows are read as ``row_type`` declares them, with no parser.

        Each field comes from its source column (`column`'s ``source=``, else
        its name); a row's value is the ``row_type`` instance, and its image
        the layout's ``row_key`` of the row.
        """
        return cls(name, source_columns(row_type), None, missing, row_type)


@attrs.frozen
class ImageTables:
    """Per-image tables joined in on each image's path, each giving part of its key.

    Each image is joined with exactly one row of every table, then
    `image_key` builds its full key from the key it had (its path's, or its
    label row's with labels per image) and the rows' values.

    Attributes:
        tables: The tables, in the order `image_key` takes their values, each
            with its parser (`ImageTable.declared` ones: `DeclaredKeyedRows`).
        image_key: (key so far, one value per table) -> the image's full key.
        row_key: A CSV row's join key (an image's path for a table row, a
            group for a label row per group) from its id cells alone; raises
            ValueError. A row that fails to parse then still refuses its images.
    """

    tables: tuple[ImageTable, ...]
    image_key: Callable[..., Any]
    row_key: Callable[[Mapping[str, str | None]], str]


@attrs.frozen
class GroupLabels:
    """Labels per group of images (a study, a patient), joined after `ImageTables`.

    Images key by path as usual, but their path holds only part of their key
    (`IngestSpec.parse_path` returns the ids in it): the per-image tables
    (`IngestSpec.image_tables`) build the rest, and the image is joined on
    `group_of` with the label rows, parsed by `IngestSpec.parse_label_row` as
    ``(group, labels)`` (`IngestSpec.csv_columns` are then the label CSVs'
    columns). An image whose group has no label row gets `no_labels`.

    Attributes:
        name: What a group is (``study``, ``patient``): it names the group in
            details, messages and the manifest.
        group_of: Key -> its group, as `IngestSpec.parse_label_row` keys it;
            given the full key, or the path's partial key of a refused image.
        no_labels: The labels of an image whose group has no label row.
        label_sources: The alternative label files, told apart by name like
            the tables' (``chexpert``, ``negbio``); ``--labels_source`` picks
            one, the first by default.
        path_key_type: The attrs class of the path's partial key (the join
            packs keys by its fields), or None for plain values.
    """

    name: str
    group_of: Callable[[Any], str]
    no_labels: Any
    label_sources: tuple[str, ...]
    path_key_type: type | None = None


@attrs.frozen
class SplitLists:
    """A data set's split list files, as codegen writes them from the declaration.

    Attributes:
        field: The key field they set (the data set's split, an enum).
        files: (file name, the split's code for the images it lists).
    """

    field: str
    files: tuple[tuple[str, int], ...]

    def roles(self, uris: Sequence[str]) -> dict[str, int]:
        """Each file's split code, by its name; every declared file must be there once.

        Raises:
            ValueError: A file of another name, a name given twice, or one missing.
        """
        codes = dict(self.files)
        found: dict[str, int] = {}
        for uri in uris:
            name = posixpath.basename(uri)
            if name not in codes:
                raise ValueError(f"{uri}: not a split list ({', '.join(sorted(codes))})")
            if any(posixpath.basename(other) == name for other in found):
                raise ValueError(f"{name} given twice")
            found[uri] = codes[name]
        absent = sorted(set(codes) - {posixpath.basename(uri) for uri in found})
        if absent:
            raise ValueError(f"no {', '.join(absent)} given")
        return found


@attrs.frozen
class IngestSpec:
    """A dataset's layout functions and generated artifacts.

    Attributes:
        dataset: The dataset's name.
        parse_path: Image path (a tar member name) -> key; raises ValueError.
            With `group_labels`, the part of the key the path holds.
        format_path: Key -> the canonical relative path (outputs use it).
        parse_label_row: (CSV row, ``file:line N``) -> (key, labels); raises
            ValueError (`SourceRowError` for a bad cell). With `group_labels`:
            -> (group, labels).
        csv_columns: Columns every label CSV must have.
        path_column: The label CSV's column holding the image's path (rows
            ``--path_match_regex`` leaves out, quarantine records).
        partition: Key -> the TFRecord folder of the image (``train/frontal``).
        partitions: Every folder `partition` can return.
        image_feature: The TFRecord feature holding the encoded image.
        encode: Example -> serialized `tf.train.Example` (generated).
        labels_row: Example -> the labels table's row (generated).
        labels_schema: Arrow schema of the labels table (generated).
        labels_bigquery_schema: BigQuery JSON schema of the labels table
            (generated; used as is for BigQuery tables).
        feature_specs: The TFRecord features (generated), written beside the
            shards as ``features.json``.
        features_module: The generated module that reads the TFRecords back,
            named in ``features.json``.
        group_labels: Set when labels come per group (then `image_tables` is
            set); None (the default) when each label row names its image's path.
        image_tables: The per-image tables joined in, if any.
        leakage: The labels table's patient and split columns, when the data
            set declares them: the patient leakage report.
        key_type: The declared key class (the join packs keys by its fields).
        labels_type: The declared labels class (likewise).
        declaration: Import path of the module declaring the data set
            (its ``DATASET``), recorded in the manifest for the data card.
        split_lists: The split's list files (``--split_lists``), when the
            data set declares them; each label row's split comes from them.
    """

    dataset: str
    parse_path: Callable[[str], Any]
    format_path: Callable[[Any], str]
    parse_label_row: Callable[[Mapping[str, str | None], str], tuple[Any, Any]]
    csv_columns: tuple[str, ...]
    partition: Callable[[Any], str]
    partitions: tuple[str, ...]
    image_feature: str
    encode: Callable[[Example[Any, Any]], bytes]
    labels_row: Callable[[Example[Any, Any]], dict[str, Any]]
    labels_schema: pa.Schema
    labels_bigquery_schema: Mapping[str, Any]
    feature_specs: tuple[FeatureSpec, ...]
    features_module: str
    group_labels: GroupLabels | None = None
    image_tables: ImageTables | None = None
    leakage: LeakageCheck | None = None
    path_column: str = "path"
    key_type: type | None = None
    labels_type: type | None = None
    declaration: str | None = None
    split_lists: SplitLists | None = None
