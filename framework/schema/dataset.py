"""What a dataset module declares: its name, key class and label class."""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs

__all__ = ["Dataset"]


def _pairs(lists: Mapping[str, enum.IntEnum] | None) -> tuple[tuple[str, enum.IntEnum], ...]:
    return tuple((lists or {}).items())


@attrs.frozen
class Dataset:
    """A dataset's declaration, exported by its module as ``DATASET``.

    Attributes:
        name: Identifier used for generated folders and commands (``mimic_cxr``).
        description: One paragraph for the data dictionary.
        key: The attrs class of the image key (ids, view, split, ...).
        labels: The attrs class of the label block (one field per label).
        image_feature: The TFRecord feature that holds the encoded image.
        path_description: What the ``path`` column holds.
        path_source: The label CSV's column that holds the image's path
            (``"Image Index"``); ``parse_path`` reads it, and the tables'
            ``path`` column holds it in its canonical form (``format_path``).
        layout: Import path of the module with the layout functions the
            ingestion needs, following a protocol of
            `datathon_etl.framework.schema.layout` (``Layout``: ``parse_path``,
            ``format_path``, ``partition``, ``PARTITIONS``; ``RowParser``
            adds ``parse_label_row``, else label rows are read as declared);
            codegen checks it and emits an ``ingest`` entry point when it is set.
        split: The key field holding the split (an enum): ``evaluate``
            scores one split, named by its code's name (``--split valid``).
        patient: The key field naming the patient: ``evaluate``'s bootstrap
            resamples patients, since one patient's images are not
            independent.
        study: The key field naming the study (a visit's images): the data
            card counts studies with it.
        view: The key field holding the view (an enum): the data card counts
            and shows images per split and view.
        split_lists: The official split as list files, one image path per
            line: file name -> the `split` field's value for the images it
            lists (``{"train_val_list.txt": Split.TRAIN_VAL, "test_list.txt":
            Split.TEST}``). The ingestion then takes them (``--split_lists``)
            and sets each label row's split from the list naming its image;
            the `split` field needs a ``default=`` for ``parse_path`` to leave.
    """

    name: str
    description: str
    key: type
    labels: type
    image_feature: str = "jpg_bytes"
    path_description: str = "The image's path relative to the data set's root."
    path_source: str = "path"
    layout: str | None = None
    split: str | None = None
    patient: str | None = None
    study: str | None = None
    view: str | None = None
    split_lists: tuple[tuple[str, enum.IntEnum], ...] = attrs.field(default=(), converter=_pairs)
