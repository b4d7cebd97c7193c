"""Image decoding, resizing and re-encoding, with stable refusal reasons.

A pure-Python layer (no Beam): `transform_image` turns the bytes of any JPEG,
PNG or DICOM file into an image of exactly the `ImageSpec`'s size, channels and format, or
raises `ImageError` carrying a `datathon_etl.framework.quarantine.Reason`.
"""

from __future__ import annotations

from datathon_etl.framework.images.formats import OUTPUT_FORMATS, ImageFormat, detect_format
from datathon_etl.framework.images.transform import (
    DEFAULT_MAX_PIXELS,
    Aspect,
    ImageError,
    ImageSpec,
    Transformed,
    transform_and_read,
    transform_image,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "OUTPUT_FORMATS",
    "Aspect",
    "ImageError",
    "ImageFormat",
    "ImageSpec",
    "Transformed",
    "detect_format",
    "transform_and_read",
    "transform_image",
]
