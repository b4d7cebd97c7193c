"""Image format detection from the bytes themselves, never from a file name.

Data sets mislabel files (PNGs named ``.jpg`` are common), so the format is read
from the magic number at the start of the file.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ImageFormat", "detect_format"]


class ImageFormat(StrEnum):
    """An image container format that the framework decodes."""

    JPEG = "jpeg"
    PNG = "png"

    @property
    def pillow_name(self) -> str:
        """The format's name in Pillow's plugin registry."""
        return _PILLOW_NAMES[self]


_PILLOW_NAMES = {ImageFormat.JPEG: "JPEG", ImageFormat.PNG: "PNG"}

# SOI followed by the first byte of the next marker: every JPEG (JFIF, EXIF,
# Adobe, raw) starts with FF D8 FF.
_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def detect_format(data: bytes) -> ImageFormat | None:
    """Returns the format of an encoded image, or None if it is not one we decode.

    Only the first bytes are looked at; a file with the right magic number may
    still be truncated or corrupt.

    Args:
        data: The file's bytes (a prefix of at least 8 bytes is enough).

    Returns:
        The format, or None for anything else (including empty input).
    """
    if data.startswith(_JPEG_MAGIC):
        return ImageFormat.JPEG
    if data.startswith(_PNG_MAGIC):
        return ImageFormat.PNG
    return None
