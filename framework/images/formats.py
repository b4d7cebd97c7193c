"""Image format detection from the bytes themselves, never from a file name.

Data sets mislabel files (PNGs named ``.jpg`` are common, DICOM files often have
no extension), so the format is read from the magic number in the file.
"""

from __future__ import annotations

import posixpath
from enum import StrEnum

__all__ = ["OUTPUT_FORMATS", "ImageFormat", "detect_format", "tree_path"]


class ImageFormat(StrEnum):
    """An image container format that the framework decodes."""

    JPEG = "jpeg"
    PNG = "png"
    DICOM = "dicom"
    """Read only: outputs are JPEG or PNG."""

    @property
    def pillow_name(self) -> str:
        """The format's name in Pillow's plugin registry."""
        return _PILLOW_NAMES[self]


_PILLOW_NAMES = {ImageFormat.JPEG: "JPEG", ImageFormat.PNG: "PNG", ImageFormat.DICOM: "DICOM"}

OUTPUT_FORMATS = (ImageFormat.JPEG, ImageFormat.PNG)
"""The formats images are written in."""

# SOI followed by the first byte of the next marker: every JPEG (JFIF, EXIF,
# Adobe, raw) starts with FF D8 FF.
_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# A DICOM file (PS3.10 7.1): a 128-byte preamble, then "DICM". Files without
# the preamble (pre-1993 ACR-NEMA, or bare datasets) are not taken.
_DICOM_MAGIC = b"DICM"
_DICOM_OFFSET = 128


def detect_format(data: bytes) -> ImageFormat | None:
    """Returns the format of an encoded image, or None if it is not one we decode.

    Only the first bytes are looked at; a file with the right magic number may
    still be truncated or corrupt.

    Args:
        data: The file's bytes (a prefix of at least 132 bytes is enough).

    Returns:
        The format, or None for anything else (including empty input).
    """
    if data.startswith(_JPEG_MAGIC):
        return ImageFormat.JPEG
    if data.startswith(_PNG_MAGIC):
        return ImageFormat.PNG
    if data.startswith(_DICOM_MAGIC, _DICOM_OFFSET):
        return ImageFormat.DICOM
    return None


_EXTENSIONS = {ImageFormat.JPEG: ".jpg", ImageFormat.PNG: ".png"}


def tree_path(path: str, image_format: ImageFormat) -> str:
    """Where an image tree (``--output_jpg_dir``) holds the output image of ``path``.

    The image's own path, except that a path whose extension is not a JPEG's
    or a PNG's (``.dcm``, none) gets the output format's in its place.
    """
    stem, extension = posixpath.splitext(path)
    if extension.lower() in (".jpg", ".jpeg", ".png"):
        return path
    return f"{stem}{_EXTENSIONS[image_format]}"
