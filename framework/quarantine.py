"""One quarantine format for every pipeline: what failed, where, and why.

Every input record (image, archive member, label row) ends either in an output
or here, so the counts add up: ``in = written + quarantined`` per stage. A
quarantined record carries a reference to the offending input (never its
bytes), so an organiser can fix the inputs and re-run only the failures.
The records are plain data (no Beam here, so that the image code can use
them); `datathon_etl.framework.run_records.WriteRunRecords` writes them.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import attrs

__all__ = [
    "QUARANTINE_TAG",
    "Quarantined",
    "Reason",
    "Stage",
]

QUARANTINE_TAG = "quarantine"
"""The tagged output name every DoFn uses for records it refuses."""


class Stage(StrEnum):
    """Where in a pipeline a record was refused."""

    LIST = "list"
    UNTAR = "untar"
    DECOMPRESS = "decompress"
    READ = "read"
    DECODE = "decode"
    PARSE_PATH = "parse_path"
    PARSE_LABELS = "parse_labels"
    JOIN = "join"
    WRITE = "write"
    INFER = "infer"


class Reason(StrEnum):
    """Why a record was refused: a stable code to filter and count on."""

    # Images.
    EMPTY_FILE = "empty_file"
    NOT_AN_IMAGE = "not_an_image"
    WRONG_IMAGE_FORMAT = "wrong_image_format"
    UNDECODABLE_IMAGE = "undecodable_image"
    TRUNCATED_IMAGE = "truncated_image"
    TOO_MANY_PIXELS = "too_many_pixels"
    NOT_A_REGULAR_FILE = "not_a_regular_file"
    # DICOM images.
    NO_PIXEL_DATA = "no_pixel_data"
    NON_IMAGE_DICOM = "non_image_dicom"
    MULTI_FRAME = "multi_frame"
    UNSUPPORTED_TRANSFER_SYNTAX = "unsupported_transfer_syntax"
    MISSING_DICOM_ATTRIBUTE = "missing_dicom_attribute"
    BAD_DICOM_ATTRIBUTE = "bad_dicom_attribute"
    # Archives and compressed files.
    UNSAFE_MEMBER_PATH = "unsafe_member_path"
    LINK_MEMBER = "link_member"
    SPECIAL_MEMBER = "special_member"
    TRUNCATED_ARCHIVE = "truncated_archive"
    CORRUPT_ARCHIVE = "corrupt_archive"
    DECOMPRESSED_TOO_LARGE = "decompressed_too_large"
    CORRUPT_COMPRESSED_FILE = "corrupt_compressed_file"
    MEMBER_TOO_LARGE = "member_too_large"
    UNKNOWN_COMPRESSION = "unknown_compression"
    # Writing outputs.
    UNSAFE_OUTPUT_PATH = "unsafe_output_path"
    DUPLICATE_OUTPUT_PATH = "duplicate_output_path"
    WRITE_FAILED = "write_failed"
    # Paths and labels.
    PATH_DOES_NOT_MATCH = "path_does_not_match"
    UNPARSEABLE_PATH = "unparseable_path"
    UNKNOWN_CODE = "unknown_code"
    BAD_LABEL_ROW = "bad_label_row"
    # Joining images with labels.
    IMAGE_WITHOUT_LABELS = "image_without_labels"
    LABELS_WITHOUT_IMAGE = "labels_without_image"
    DUPLICATE_LABEL_ROW = "duplicate_label_row"
    DUPLICATE_IMAGE = "duplicate_image"
    MISSING_METADATA = "missing_metadata"
    MISSING_SPLIT = "missing_split"
    # Inference.
    BAD_EXAMPLE = "bad_example"


@attrs.frozen
class Quarantined:
    """One refused input record.

    Attributes:
        path: The record's identity: an image's path relative to its input
            root, an archive member's name, or a label row's ``path`` value.
        stage: Where it was refused.
        reason: Why, as a stable code.
        detail: A human-readable explanation (exception message, counts).
        source: Where the offending input is: a file URI, ``archive#member``,
            or ``labels.csv:row 12``. Never the bytes themselves.
    """

    path: str
    stage: Stage = attrs.field(converter=Stage)
    reason: Reason = attrs.field(converter=Reason)
    detail: str = ""
    source: str = ""

    def to_dict(self) -> dict[str, str]:
        """Returns the record as a flat row (also the quarantine table's row)."""
        return {
            "path": self.path,
            "stage": str(self.stage),
            "reason": str(self.reason),
            "detail": self.detail,
            "source": self.source,
        }

    def to_json(self) -> str:
        """Returns the record as one JSON line, keys in a fixed order."""
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> Quarantined:
        """Parses a line written by `to_json`."""
        data: dict[str, Any] = json.loads(line)
        return cls(**data)
