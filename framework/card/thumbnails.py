"""Thumbnails of the resized outputs, as ``data:`` URIs a page can hold.

Each image is read from the run's JPG tree (``<output_jpg_dir>/<path>``)
or taken from a TFRecord, shrunk to fit a square with Pillow and re-encoded as a JPEG, so the card
stays small whatever ``--output_image_shape`` was.
"""

from __future__ import annotations

import base64
import io

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from PIL import Image

__all__ = ["THUMBNAIL_SIDE", "thumbnail_uri", "thumbnail_uri_of"]

THUMBNAIL_SIDE = 128
"""Pixels of a thumbnail's longer side."""


def thumbnail_uri(uri: str, *, side: int = THUMBNAIL_SIDE) -> str:
    """Reads the image at ``uri``; returns it shrunk to ``side`` pixels as a JPEG ``data:`` URI.

    Raises:
        OSError: The image cannot be read or decoded (PIL's errors are OSErrors).
    """
    with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return thumbnail_uri_of(f.read(), side=side)


def thumbnail_uri_of(data: bytes, *, side: int = THUMBNAIL_SIDE) -> str:
    """An encoded image, shrunk to ``side`` pixels, as a JPEG ``data:`` URI.

    Raises:
        OSError: It does not decode.
    """
    with Image.open(io.BytesIO(data)) as image:
        image.thumbnail((side, side))
        shown = image if image.mode in ("L", "RGB") else image.convert("RGB")
        out = io.BytesIO()
        shown.save(out, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")
