"""Decode, resize and re-encode one image: a pure function of bytes and a spec.

`transform_image` turns the bytes of a JPEG or PNG of any size and pixel mode
into an image of exactly the requested size, channel count and format, or raises
`ImageError` with a stable `Reason` code. There is no Beam in here; a DoFn wraps
it and routes `ImageError` to the quarantine output.

How it works, and why:
- The format comes from the magic number (`detect_format`), never the name.
- The pixel count is checked from the header, before any pixel is decoded, so a
  decompression bomb never allocates its pixels.
- A JPEG is decoded at the largest DCT scale (1/2, 1/4, 1/8) that keeps both
  sides of the region we need at or above the target (the scale Pillow's
  ``draft`` picks). Entropy decoding dominates the cost of big JPEGs, and the
  scaled IDCT is a good low-pass filter, so this is both the fastest and a
  clean first step. The decoder is libjpeg-turbo through ``simplejpeg`` in
  strict mode, because Pillow hides libjpeg's warnings: a JPEG whose scan data
  is cut and ended with an EOI marker decodes there without error, its missing
  rows grey. Strict, "premature end of data segment" raises; the pixels are
  the same as Pillow's (same library, same scale, same IDCT).
- The rest of the way is a Pillow ``resize`` with the bilinear filter, which
  Pillow widens with the scale factor when it shrinks (a tent filter: proper
  antialiasing, not point sampling). Chosen by measurement (``make bench``, see
  ``bench/transform.py``; 2544x3056 JPEGs to 320x320, one core): 54.9 dB PSNR
  against a float Lanczos reference (Lanczos 55.1 dB, box 49.4 dB, the original
  pipelines' TF method 45.6 dB) at about 0.93 of the speed of decoding alone
  (Lanczos 0.86), about 1.17x the original method's speed. OpenCV
  (``IMREAD_REDUCED_GRAYSCALE_4`` + ``INTER_AREA``) was 2 to 5% faster still;
  Pillow meets the targets, so it stays the imaging library (``simplejpeg``
  only decodes JPEGs, for its strict mode).
- Truncated files are refused: Pillow's ``LOAD_TRUNCATED_IMAGES`` is never
  turned on (PNG), and libjpeg's warnings are errors (JPEG), so a short file
  raises instead of being filled with grey.
- EXIF orientation is ignored (pixels are taken as stored), as the original
  pipelines' ``tf.io.decode_jpeg`` did.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from enum import StrEnum

import attrs
import numpy as np
import simplejpeg
from PIL import Image, ImageFile, UnidentifiedImageError

from datathon_etl.framework.images.dicom import DicomError, DicomOptions, read_dicom
from datathon_etl.framework.images.formats import OUTPUT_FORMATS, ImageFormat, detect_format
from datathon_etl.framework.quarantine import Reason

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "Aspect",
    "ImageError",
    "ImageSpec",
    "Transformed",
    "transform_and_read",
    "transform_image",
]

DEFAULT_MAX_PIXELS = 89_478_485
"""Pillow's default decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``)."""

# Chosen by measurement (bench/transform.py); see the module docstring.
_RESAMPLE = Image.Resampling.BILINEAR

# Modes whose samples are wider than 8 bits: scaled to 8 bits over their range.
_WIDE_GREY_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})


class Aspect(StrEnum):
    """What to do when the source's aspect ratio differs from the target's."""

    STRETCH = "stretch"
    """Resize to exactly height x width, distorting the aspect ratio (what the
    original pipelines did)."""
    PAD = "pad"
    """Fit the whole image inside, centred, and fill the rest with black."""
    CROP = "crop"
    """Cut the largest centred region of the target's aspect ratio, then resize."""


def _positive(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be a positive integer, got {value!r}")


def _optional_format(value: str | None) -> ImageFormat | None:
    return None if value is None else ImageFormat(value)


def _output_format(_instance: object, _attribute: object, value: ImageFormat) -> None:
    if value not in OUTPUT_FORMATS:
        raise ValueError(f"images are written as JPEG or PNG, not {value}")


def _bit_depth(instance: ImageSpec, _attribute: object, value: int) -> None:
    if value not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {value!r}")
    if value == 16 and (instance.format is not ImageFormat.PNG or instance.channels != 1):
        raise ValueError("16-bit output is grayscale PNG only (format png, 1 channel)")


@attrs.frozen
class ImageSpec:
    """What `transform_image` produces.

    Attributes:
        height: Output rows.
        width: Output columns.
        channels: 1 (grayscale; colour sources become their luminance,
            ITU-R BT.601) or 3 (RGB; grayscale sources are replicated).
        format: Output container, ``"jpeg"`` or ``"png"``.
        jpeg_quality: JPEG quality, 1 to 100 (ignored for PNG).
        aspect: How to handle a different aspect ratio; see `Aspect`.
        max_pixels: Sources with more pixels (width x height, read from the
            header) are refused as `Reason.TOO_MANY_PIXELS` before decoding.
            Pillow's own global limit (``Image.MAX_IMAGE_PIXELS``) still
            applies on top: raising this above it warns (``DecompressionBombWarning``)
            and above twice that is refused too.
        source_format: The only input format accepted (others are refused
            as `Reason.WRONG_IMAGE_FORMAT`); None: JPEG, PNG and DICOM.
        bit_depth: 8, or 16 for 16-bit grayscale PNG (wide sources keep their
            precision; 8-bit ones are scaled by 257).
        dicom: How DICOM pixels become a picture (window, multi-frame).
    """

    height: int = attrs.field(validator=_positive)
    width: int = attrs.field(validator=_positive)
    channels: int = attrs.field(default=1, validator=attrs.validators.in_((1, 3)))
    format: ImageFormat = attrs.field(
        default=ImageFormat.JPEG, converter=ImageFormat, validator=_output_format
    )
    jpeg_quality: int = attrs.field(
        default=95,
        validator=[_positive, attrs.validators.le(100)],
    )
    aspect: Aspect = attrs.field(default=Aspect.STRETCH, converter=Aspect)
    max_pixels: int = attrs.field(default=DEFAULT_MAX_PIXELS, validator=_positive)
    source_format: ImageFormat | None = attrs.field(default=None, converter=_optional_format)
    bit_depth: int = attrs.field(default=8, validator=_bit_depth)
    dicom: DicomOptions = attrs.field(factory=DicomOptions)


class ImageError(Exception):
    """An input that cannot become an output image, with a stable reason code.

    Attributes:
        reason: Why, as a `Reason` from the quarantine vocabulary.
        detail: A human-readable explanation.
    """

    def __init__(self, reason: Reason, detail: str) -> None:
        # Both go to Exception.__init__ so the error pickles (Beam ships them).
        super().__init__(reason, detail)
        self.reason = Reason(reason)
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


@attrs.frozen
class Transformed:
    """An output image, with what was read of its source.

    Attributes:
        image: The encoded output image.
        width: The source's width in pixels, from its header.
        height: The source's height in pixels.
        attributes: The declared DICOM header attributes as text (None:
            absent), in the order asked; empty if none were.
    """

    image: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    width: int
    height: int
    attributes: tuple[str | None, ...] = ()


def transform_image(data: bytes, spec: ImageSpec) -> bytes:
    """Decodes an image, resizes it to the spec and encodes it (see `transform_and_read`)."""
    return transform_and_read(data, spec).image


def transform_and_read(data: bytes, spec: ImageSpec, keywords: Sequence[str] = ()) -> Transformed:
    """Decodes an image, resizes it to the spec and encodes it; reads its size and attributes.

    Every JPEG and PNG variant Pillow reads is accepted: grayscale, RGB, CMYK,
    baseline or progressive JPEG; 1, 2, 4, 8 or 16-bit PNG, palette, with or
    without alpha. Conversions:
    - 16-bit grayscale is resized in floating point, then scaled to 8 bits over
      the image's own minimum..maximum (not clipped; an image of a single value
      becomes black). 16-bit colour PNGs keep their high bytes (Pillow).
    - Alpha is composited on black, the colour of the padding: fully
      transparent pixels carry arbitrary colour in many writers, so dropping
      alpha could reveal noise.
    - Palette images are expanded (with their transparency, if any); CMYK
      becomes RGB.

    The output is deterministic: the same bytes and spec give the same bytes.

    Args:
        data: The encoded source image.
        spec: The output size, channels, format and aspect handling.
        keywords: DICOM header attributes to read (a data set's declared
            ones); the image must then be a DICOM file.

    Returns:
        The encoded output image, exactly ``spec.height`` x ``spec.width`` with
        ``spec.channels`` channels, the source's size (read from its header
        before any pixel is decoded: it costs nothing more) and the
        attributes as text (None: absent).

    Raises:
        ImageError: With reason EMPTY_FILE, NOT_AN_IMAGE, WRONG_IMAGE_FORMAT, TOO_MANY_PIXELS,
            TRUNCATED_IMAGE, UNDECODABLE_IMAGE, a DICOM reason, or
            WRONG_IMAGE_FORMAT for attributes asked of an image that is not DICOM.
    """
    if not data:
        raise ImageError(Reason.EMPTY_FILE, "zero bytes")
    source_format = detect_format(data)
    if source_format is None:
        raise ImageError(
            Reason.NOT_AN_IMAGE, f"no JPEG, PNG or DICOM signature (starts with {data[:8].hex()})"
        )
    if spec.source_format not in (None, source_format):
        raise ImageError(
            Reason.WRONG_IMAGE_FORMAT, f"{source_format} bytes, expected {spec.source_format}"
        )
    attributes: tuple[str | None, ...] = ()
    if source_format is ImageFormat.DICOM:
        image, value_range, source_size, attributes = _decode_dicom(data, spec, keywords)
    elif keywords:
        raise ImageError(
            Reason.WRONG_IMAGE_FORMAT,
            f"{source_format} bytes; the data set reads DICOM header attributes "
            f"({', '.join(keywords)}), so its images must be DICOM files",
        )
    else:
        source = _open(data, source_format, spec)
        source_size = source.size
        # Geometry from the header's size, so that a scaled JPEG decode gives the
        # same output size as a full one.
        box = _source_box(source.width, source.height, spec)
        size = _resized_size(source.width, source.height, spec)
        if source_format is ImageFormat.JPEG:
            image, box = _decode_jpeg(data, source, box, size, spec.channels)
            value_range = None
        else:
            image, value_range = _load(source, len(data), spec.channels)
        if image.size != size or box != (0.0, 0.0, float(image.width), float(image.height)):
            image = image.resize(size, _RESAMPLE, box=box)
    image = _quantise(image, value_range, spec.bit_depth)
    if spec.channels == 3 and image.mode != "RGB":
        # Grey is replicated after the resize: a third of the filtering work.
        image = image.convert("RGB")
    elif spec.channels == 1 and image.mode == "RGB":
        image = image.convert("L")
    if image.size != (spec.width, spec.height):
        canvas = Image.new(image.mode, (spec.width, spec.height), 0)
        canvas.paste(image, ((spec.width - image.width) // 2, (spec.height - image.height) // 2))
        image = canvas
    return Transformed(_encode(image, spec), *source_size, attributes)


def _open(data: bytes, source_format: ImageFormat, spec: ImageSpec) -> ImageFile.ImageFile:
    """Reads the header only and refuses images with too many pixels."""
    try:
        image = Image.open(io.BytesIO(data), formats=[source_format.pillow_name])
    except UnidentifiedImageError as error:
        # Its message names the BytesIO's address: not a stable detail.
        raise ImageError(
            Reason.UNDECODABLE_IMAGE, f"{source_format} signature but unreadable header"
        ) from error
    except Image.DecompressionBombError as error:
        raise ImageError(Reason.TOO_MANY_PIXELS, str(error)) from error
    except MemoryError:
        raise
    except Exception as error:
        raise _decode_error(error) from error
    _check_size(image.width, image.height, source_format, spec)
    return image


def _check_size(width: int, height: int, source_format: ImageFormat, spec: ImageSpec) -> None:
    """Refuses an empty or too large image by its header, before any pixel is decoded."""
    if width < 1 or height < 1:
        raise ImageError(Reason.UNDECODABLE_IMAGE, f"{source_format} header says {width}x{height}")
    if width * height > spec.max_pixels:
        raise ImageError(
            Reason.TOO_MANY_PIXELS,
            f"{width}x{height} = {width * height} pixels > max_pixels {spec.max_pixels}",
        )


def _decode_dicom(
    data: bytes, spec: ImageSpec, keywords: Sequence[str]
) -> tuple[Image.Image, tuple[float, float] | None, tuple[int, int], tuple[str | None, ...]]:
    """Decodes a DICOM file's picture at the output size (see `dicom`).

    Returns:
        The image (F in 0..1 for grey, RGB for colour), for F its range, and
        the source's (width, height) and the attributes ``keywords`` as text.
    """
    try:
        source = read_dicom(data, spec.dicom)
        attributes = source.attributes(keywords)
        _check_size(source.width, source.height, ImageFormat.DICOM, spec)
        box = _source_box(source.width, source.height, spec)
        size = _resized_size(source.width, source.height, spec)
        image, grey = source.render(box, size, spec.dicom, precise=spec.bit_depth == 16)
    except DicomError as error:
        raise ImageError(error.reason, error.detail) from error
    return image, ((0.0, 1.0) if grey else None), (source.width, source.height), attributes


def _load(
    image: ImageFile.ImageFile, size: int, channels: int
) -> tuple[Image.Image, tuple[float, float] | None]:
    """Decodes a PNG's pixels into L, RGB or (wide grey) F.

    Returns:
        The decoded image and, for an F image, the value range to scale to 8 bits.
    """
    # The whole file is in memory: one read, so the decoder never suspends mid-stream.
    image.decodermaxblock = max(size, image.decodermaxblock)
    try:
        image.load()
        return _to_working_mode(image, channels)
    except MemoryError:
        raise
    except Exception as error:
        raise _decode_error(error) from error


def _decode_error(error: Exception) -> ImageError:
    """Classifies a decoder failure as truncated or otherwise undecodable."""
    detail = f"{type(error).__name__}: {error}"
    # libjpeg: "Premature end of JPEG file", "... premature end of data segment".
    message = str(error).lower()
    if isinstance(error, EOFError) or "truncated" in message or "premature end" in message:
        return ImageError(Reason.TRUNCATED_IMAGE, detail)
    return ImageError(Reason.UNDECODABLE_IMAGE, detail)


def _fit(width: int, height: int, spec: ImageSpec) -> tuple[int, int]:
    """The size of a width x height image fitted inside the spec (pad mode)."""
    scale = min(spec.width / width, spec.height / height)
    return (
        min(spec.width, max(1, round(width * scale))),
        min(spec.height, max(1, round(height * scale))),
    )


def _resized_size(width: int, height: int, spec: ImageSpec) -> tuple[int, int]:
    """The size the source region is resized to (before any padding)."""
    if spec.aspect is Aspect.PAD:
        return _fit(width, height, spec)
    return spec.width, spec.height


def _source_box(width: int, height: int, spec: ImageSpec) -> tuple[float, float, float, float]:
    """The region of the source that is resized: all of it, or a centred crop."""
    # Compared in integers: a source of the target's exact shape is not cropped
    # (in floats, 7 / (7 / 95) is 95.00000000000001, a box past the edge).
    if spec.aspect is not Aspect.CROP or width * spec.height == height * spec.width:
        return 0.0, 0.0, float(width), float(height)
    if width * spec.height > height * spec.width:
        crop = height * spec.width / spec.height
        return (width - crop) / 2, 0.0, (width + crop) / 2, float(height)
    crop = width * spec.height / spec.width
    return 0.0, (height - crop) / 2, float(width), (height + crop) / 2


def _decode_jpeg(
    data: bytes,
    header: ImageFile.ImageFile,
    box: tuple[float, float, float, float],
    size: tuple[int, int],
    channels: int,
) -> tuple[Image.Image, tuple[float, float, float, float]]:
    """Decodes a JPEG at the largest DCT scale that keeps the region >= size.

    Returns:
        The image in L or RGB, and the region to resize in its coordinates.
    """
    width, height = header.size
    need_w = max(1, math.ceil(size[0] * width / (box[2] - box[0])))
    need_h = max(1, math.ceil(size[1] * height / (box[3] - box[1])))
    # Pillow's draft rule: the largest s in (8, 4, 2, 1) with s <= width // need_w
    # and s <= height // need_h. A factor of at least s and sides of at least
    # width / s pin libjpeg-turbo's choice among its M/8 scales to exactly 1/s.
    fit = min(width // need_w, height // need_h)
    scale = next(s for s in (8, 4, 2, 1) if s <= max(fit, 1))
    # Straight to luminance skips the chroma planes; CMYK comes as stored.
    if header.mode == "CMYK":
        colorspace = "CMYK"
    else:
        colorspace = "GRAY" if channels == 1 or header.mode == "L" else "RGB"
    try:
        pixels = simplejpeg.decode_jpeg(
            data,
            colorspace=colorspace,
            min_factor=scale,
            min_width=-(-width // scale),
            min_height=-(-height // scale),
            strict=True,
        )
    except MemoryError:
        raise
    except Exception as error:
        raise _decode_error(error) from error
    scaled_h, scaled_w = pixels.shape[:2]
    if colorspace == "CMYK":
        # Adobe's inverted CMYK, as Pillow assumes for every CMYK JPEG.
        image = Image.frombytes("CMYK", (scaled_w, scaled_h), pixels.tobytes(), "raw", "CMYK;I")
    else:
        image = Image.fromarray(pixels[:, :, 0] if colorspace == "GRAY" else pixels)
    working, _ = _to_working_mode(image, channels)
    # The scaled decode covers width / s source pixels; its last column may be
    # a partial one, so scale by the exact factor rather than by the new size.
    fx, fy = scaled_w / width, scaled_h / height
    return working, (box[0] * fx, box[1] * fy, box[2] * fx, box[3] * fy)


def _to_working_mode(
    image: Image.Image, channels: int
) -> tuple[Image.Image, tuple[float, float] | None]:
    """Converts a decoded image to L or RGB (or F for wide grey), alpha composited."""
    mode = image.mode
    if mode in _WIDE_GREY_MODES:
        # Resample in float, scale to 8 bits at the end: no precision is lost
        # before the filter, and the range is the source's, not the output's.
        samples = np.asarray(image, dtype=np.float32)
        low, high = float(samples.min()), float(samples.max())
        return Image.fromarray(samples), (low, high)
    if mode == "P":
        mode = "RGBA" if "transparency" in image.info else "RGB"
        image = image.convert(mode)
    elif mode == "PA":
        mode = "RGBA"
        image = image.convert(mode)
    if mode in ("LA", "RGBA"):
        image = _on_black(image)
        mode = image.mode
    if mode not in ("L", "RGB"):
        # 1, CMYK, YCbCr, LAB, ...: Pillow's conversions.
        image = image.convert("L" if mode == "1" else "RGB")
    if channels == 1 and image.mode == "RGB":
        # Luminance before the resize: a third of the filtering work.
        image = image.convert("L")
    return image, None


def _on_black(image: Image.Image) -> Image.Image:
    """Composites an LA or RGBA image on black (colour times alpha)."""
    base = "L" if image.mode == "LA" else "RGB"
    canvas = Image.new(base, image.size, 0)
    canvas.paste(image.convert(base), (0, 0), image.getchannel("A"))
    return canvas


def _quantise(
    image: Image.Image, value_range: tuple[float, float] | None, bit_depth: int
) -> Image.Image:
    """Scales an F image from value_range to 0..255 or 0..65535 (a constant image to 0).

    An 8-bit (L or RGB) image stays as it is for 8-bit output; for 16-bit
    output its grey is scaled by 257 (255 -> 65535).
    """
    top = 255.0 if bit_depth == 8 else 65535.0
    if value_range is None:
        if bit_depth == 8:
            return image
        grey = np.asarray(image.convert("L") if image.mode != "L" else image, dtype=np.uint16)
        return Image.fromarray(grey * np.uint16(257))
    low, high = value_range
    samples = np.asarray(image, dtype=np.float32)
    if high > low:
        samples = (samples - np.float32(low)) * np.float32(top / (high - low))
    else:
        samples = np.zeros_like(samples)
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    return Image.fromarray(np.clip(samples + 0.5, 0.0, top).astype(dtype))


def _encode(image: Image.Image, spec: ImageSpec) -> bytes:
    """Encodes the final image in the spec's format."""
    buffer = io.BytesIO()
    if spec.format is ImageFormat.JPEG:
        image.save(buffer, format="JPEG", quality=spec.jpeg_quality)
    else:
        image.save(buffer, format="PNG")
    return buffer.getvalue()
