"""DICOM pixels to display values: modality LUT, VOI window, polarity, colour.

`read_dicom` parses one DICOM file's bytes (pydicom) and refuses, with a
stable `Reason`, what cannot become one picture: a broken or truncated file,
an object with no pixels (a structured report, an encapsulated PDF), more than
one frame (unless the first is asked for), a transfer syntax no installed
decoder reads (naming the package that would). `DicomImage.render` then gives
the picture at the size the caller needs, as a float image in 0..1 (grey) or
an 8-bit RGB image (colour).

Grey pixels follow the standard's order (PS3.3 C.11, PS3.4 N.2): stored values
-> Modality LUT (rescale slope/intercept, or a Modality LUT table) -> VOI
(the window centre/width with its VOI LUT Function LINEAR, LINEAR_EXACT or
SIGMOID, the first of several windows; or a VOI LUT table) -> MONOCHROME1
inverted last, so that bone is bright whatever the file's polarity. Which
window: `Window.STORED` (the file's; min-max where it has none), `Window.FIXED`
(given centre and width), or `Window.MINMAX` (the image's own range).

Fast, and why it stays right:
- Rescale and the linear window are affine up to the clip, so the stored values
  are shrunk first (Pillow's box filter, an area average, on the 16-bit
  integers: no float copy of the full image) and windowed at the output size.
  This differs from windowing first only where a pixel's neighbourhood straddles
  the clip; measured at >= 45 dB PSNR against a float full-resolution reference
  (``bench/dicom.py``). Where a table LUT (Modality or VOI LUT Sequence) is
  present, which need not be smooth, the tables are applied at full resolution
  first. Integer shrinking rounds to whole stored units, so a window narrower
  than the output's steps (CT soft tissue; 16-bit output) is shrunk in float.
- A JPEG 2000 codestream is decoded at a reduced resolution level (OpenJPEG
  discards the finest wavelet levels; Pillow's ``reduce``) when the output is
  at least three times smaller: the low-pass band is a low-passed smaller
  image, and skipping its detail bands is most of the decoding. A shrink of
  at least 1.5x follows it, with a tent filter (`_reduce_level` and
  `_resize` say why).
  Its samples stand at the first pixel of each 2**level block, not at the
  block's centre; the resize box is shifted to match (45.0 -> 49.1 dB on the
  bench).
- Everything else (JPEG, JPEG-LS, RLE, big endian, deflated, colour) goes
  through ``pydicom.pixels.pixel_array``: pydicom's plugins pick the decoder
  (pylibjpeg-openjpeg for JPEG 2000, python-gdcm for lossless JPEG and
  JPEG-LS, Pillow for 8-bit JPEG).

Only the pixel module's attributes are read; nothing else from the header
leaves this module (headers carry identifying data). `DicomImage.dataset` is
where declared header attributes can be read later.
"""

from __future__ import annotations

import io
import logging
import math
import re
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt
import pydicom
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.multival import MultiValue
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, apply_voi
from pydicom.pixels.utils import get_expected_length, pixel_array
from pydicom.uid import JPEG2000, UID, JPEG2000Lossless
from pydicom.valuerep import PersonName

from datathon_etl.framework.quarantine import Reason

__all__ = ["DicomImage", "DicomOptions", "MultiFrame", "Window", "read_dicom"]


class Window(StrEnum):
    """Which VOI window turns modality values into display values."""

    STORED = "stored"
    """The file's own: its VOI LUT, else its first window, else min-max."""
    FIXED = "fixed"
    """The centre and width given in `DicomOptions` (modality units)."""
    MINMAX = "minmax"
    """The image's own minimum..maximum."""


class MultiFrame(StrEnum):
    """What to do with a file of more than one frame."""

    REFUSE = "refuse"
    """Quarantined as `Reason.MULTI_FRAME`."""
    FIRST = "first"
    """The first frame is the picture."""


def _optional_float(value: float | None) -> float | None:
    return None if value is None else float(value)


@attrs.frozen
class DicomOptions:
    """How DICOM pixels become a picture.

    Attributes:
        window: Which VOI window; see `Window`.
        window_center: The centre for `Window.FIXED`, in modality units.
        window_width: The width for `Window.FIXED` (> 1, as the standard's).
        multi_frame: Refuse files of several frames, or take the first.
    """

    window: Window = attrs.field(default=Window.STORED, converter=Window)
    window_center: float | None = attrs.field(default=None, converter=_optional_float)
    window_width: float | None = attrs.field(default=None, converter=_optional_float)
    multi_frame: MultiFrame = attrs.field(default=MultiFrame.REFUSE, converter=MultiFrame)

    def __attrs_post_init__(self) -> None:
        fixed = self.window_center is not None and self.window_width is not None
        if (self.window is Window.FIXED) != fixed or (
            self.window is not Window.FIXED
            and (self.window_center is not None or self.window_width is not None)
        ):
            raise ValueError("a window centre and width are given with the fixed window, only")
        if self.window_width is not None and not self.window_width > 1:
            raise ValueError(f"the window width must be > 1, got {self.window_width}")


class DicomError(Exception):
    """A DICOM file that cannot become a picture (mapped to `ImageError` by the caller)."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason = Reason(reason)
        self.detail = detail


# SOP classes that never hold an image, by UID prefix (PS3.4 B.5): refused as
# non-image objects rather than as images missing their pixels.
_NON_IMAGE_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.88.": "structured report",
    "1.2.840.10008.5.1.4.1.1.104.": "encapsulated document",
    "1.2.840.10008.5.1.4.1.1.9.": "waveform",
    "1.2.840.10008.5.1.4.1.1.11.": "presentation state",
    "1.2.840.10008.5.1.4.1.1.66": "raw data or registration",
    "1.2.840.10008.5.1.4.1.1.481.2": "RT dose",
    "1.2.840.10008.5.1.4.1.1.481.3": "RT structure set",
    "1.2.840.10008.5.1.4.1.1.481.5": "RT plan",
}

# The package that decodes a compressed transfer syntax, for the quarantine
# detail when none installed does. JPEG 12-bit needs pylibjpeg-libjpeg, which is
# GPL-3.0 and so not a dependency of this Apache-2.0 project.
_DECODER_PACKAGES = {
    "1.2.840.10008.1.2.4.50": "pillow",
    "1.2.840.10008.1.2.4.51": "pylibjpeg-libjpeg (12-bit JPEG)",
    "1.2.840.10008.1.2.4.57": "python-gdcm or pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.70": "python-gdcm or pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.80": "python-gdcm, pyjpegls or pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.81": "python-gdcm, pyjpegls or pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.90": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.91": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.201": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.202": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.203": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.5": "pylibjpeg-rle",
}

_GREY = frozenset({"MONOCHROME1", "MONOCHROME2"})

# A reduced JPEG 2000 level is followed by at least this much area shrinking.
_MIN_FINAL_SHRINK = 1.5

# pydicom swallows an end of file inside a sequence or encapsulated pixel data
# (a warning, and the element dropped) unless its validation mode raises, which
# would also refuse files with harmless value errors. Its warnings go through the
# "pydicom" logger in the reading thread, so a filter there tells this thread
# that its file ended early. Thread-local, so parallel reads do not mix.
_reading = threading.local()


class _EndOfFileFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(_reading, "active", False) and "end of file" in record.getMessage().lower():
            _reading.ended_early = True
        return True


logging.getLogger("pydicom").addFilter(_EndOfFileFilter())


class _Reader(io.BytesIO):
    """A file whose reads note a value cut by the end of the data.

    pydicom takes a short read of an element's value as the value (only its
    pixel data length is checked later); the end of a whole file is a read that
    returns nothing, not part of what was asked.
    """

    short = ""

    def read(self, size: int | None = -1, /) -> bytes:
        chunk = super().read(size)
        if size is not None and 0 < len(chunk) < size and not self.short:
            self.short = f"a value is cut by the end of the file: {len(chunk)} of {size} bytes"
        return chunk


@contextmanager
def _watch_end_of_file() -> Iterator[None]:
    _reading.active, _reading.ended_early = True, False
    try:
        yield
    finally:
        _reading.active = False


def read_dicom(data: bytes, options: DicomOptions) -> DicomImage:
    """Parses a DICOM file and checks that it holds one picture we can decode.

    Args:
        data: The whole file (preamble and ``DICM`` prefix included).
        options: The multi-frame choice is applied here.

    Returns:
        The parsed file, its pixels not yet decoded.

    Raises:
        DicomError: UNDECODABLE_IMAGE, TRUNCATED_IMAGE, NON_IMAGE_DICOM,
            NO_PIXEL_DATA, MULTI_FRAME or UNSUPPORTED_TRANSFER_SYNTAX.
    """
    reader = _Reader(data)
    try:
        with _watch_end_of_file():
            dataset = pydicom.dcmread(reader)
            ended_early = _reading.ended_early
    except MemoryError:
        raise
    except (EOFError, struct.error) as error:
        raise DicomError(Reason.TRUNCATED_IMAGE, f"DICOM file ends early: {error}") from error
    except Exception as error:  # InvalidDicomError, and pydicom's parsing errors
        raise _unreadable(error) from error
    if reader.short:
        raise DicomError(Reason.TRUNCATED_IMAGE, reader.short)
    if ended_early:
        raise DicomError(Reason.TRUNCATED_IMAGE, "the file ends inside a sequence or pixel data")
    try:
        # pydicom converts an element's value when it is first read: a mangled
        # one (an unknown VR, say) fails here, not in dcmread.
        frame = _frame_index(dataset, options)
    except (DicomError, MemoryError):
        raise
    except Exception as error:
        raise _unreadable(error) from error
    try:
        width, height = int(dataset.Columns), int(dataset.Rows)
    except (TypeError, ValueError) as error:
        raise DicomError(Reason.UNDECODABLE_IMAGE, "Rows or Columns is not a number") from error
    return DicomImage(dataset, frame, width, height)


def _unreadable(error: Exception) -> DicomError:
    """A pydicom parsing error as UNDECODABLE_IMAGE, naming only its type and tag.

    Its message may quote a value, and header values can identify the patient.
    """
    tag = re.search(r"\([0-9A-Fa-f]{4},[0-9A-Fa-f]{4}\)", str(error))
    where = f" at tag {tag.group(0)}" if tag else ""
    return DicomError(Reason.UNDECODABLE_IMAGE, f"unreadable DICOM: {type(error).__name__}{where}")


def _frame_index(dataset: Dataset, options: DicomOptions) -> int:
    """Checks the pixel module; returns the frame to decode."""
    sop_class = str(dataset.get("SOPClassUID", ""))
    if "PixelData" not in dataset:
        for prefix, kind in _NON_IMAGE_CLASSES.items():
            if sop_class.startswith(prefix):
                name = UID(sop_class).name
                raise DicomError(Reason.NON_IMAGE_DICOM, f"{kind} ({name}), not an image")
        if "FloatPixelData" in dataset or "DoubleFloatPixelData" in dataset:
            raise DicomError(Reason.UNDECODABLE_IMAGE, "float pixel data is not supported")
        raise DicomError(Reason.NO_PIXEL_DATA, "no Pixel Data element")
    for keyword in ("Rows", "Columns", "BitsAllocated", "PhotometricInterpretation"):
        if dataset.get(keyword) in (None, "", 0):
            raise DicomError(Reason.UNDECODABLE_IMAGE, f"pixel module without {keyword}")
    try:
        frames = int(dataset.get("NumberOfFrames") or 1)
    except (TypeError, ValueError) as error:
        raise DicomError(Reason.UNDECODABLE_IMAGE, f"Number of Frames: {error}") from error
    if frames > 1 and options.multi_frame is MultiFrame.REFUSE:
        raise DicomError(
            Reason.MULTI_FRAME, f"{frames} frames (--dicom_multi_frame first takes the first)"
        )
    syntax = dataset.file_meta.get("TransferSyntaxUID")
    if syntax is None:
        raise DicomError(Reason.UNDECODABLE_IMAGE, "no Transfer Syntax UID in the file meta")
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError as error:
        raise DicomError(
            Reason.UNSUPPORTED_TRANSFER_SYNTAX, f"{UID(syntax).name}: no decoder exists"
        ) from error
    if not decoder.is_available:
        raise _unsupported(UID(syntax))
    if not UID(syntax).is_encapsulated:
        expected = get_expected_length(dataset)
        if len(dataset.PixelData) < expected:
            raise DicomError(
                Reason.TRUNCATED_IMAGE,
                f"{len(dataset.PixelData)} bytes of pixel data, {expected} expected",
            )
    return 0


def _unsupported(syntax: UID) -> DicomError:
    package = _DECODER_PACKAGES.get(str(syntax), "none known")
    return DicomError(
        Reason.UNSUPPORTED_TRANSFER_SYNTAX,
        f"{syntax.name} ({syntax}): no installed decoder reads it; it needs {package}",
    )


@attrs.frozen
class _Stored:
    """Decoded grey samples: stored value = value / gain - offset.

    Attributes:
        image: L, I;16, I or F.
        scale: Its size over the picture's (1, or 2**-level for JPEG 2000).
        shift: Where its samples sit: picture coordinate x is
            ``x * scale + shift`` in it (a JPEG 2000 low-pass sample stands at
            the first of the 2**level pixels it replaces, not their centre).
        offset: Added to the stored values (signed data made unsigned).
        gain: Their scale (Pillow's JPEG 2000 samples fill 16 bits).
    """

    image: Image.Image
    scale: float
    shift: float
    offset: float
    gain: float

    def extrema(self) -> tuple[float, float]:
        """The least and greatest stored value."""
        low, high = np.asarray(self.image.getextrema(), dtype=np.float64)
        return float(low) / self.gain - self.offset, float(high) / self.gain - self.offset

    def values(self) -> npt.NDArray[np.int64]:
        """The stored values as integers (for table LUTs)."""
        values = np.asarray(self.image, dtype=np.float64) / self.gain - self.offset
        return np.rint(values).astype(np.int64)


@attrs.frozen
class DicomImage:
    """A parsed DICOM file with one picture to decode.

    Attributes:
        dataset: The parsed file (pydicom). Only the pixel module is read here.
        frame: The frame that is the picture.
        width: Columns.
        height: Rows.
    """

    dataset: Dataset
    frame: int
    width: int
    height: int

    def attributes(self, keywords: Sequence[str]) -> tuple[str | None, ...]:
        r"""The header attributes ``keywords`` as text, as a CSV cell would hold them.

        Several values are joined by a backslash, as the file stores them
        (``PixelSpacing``: ``0.139\0.139``); an empty value is ``""``.

        Returns:
            One text per keyword, None where the file lacks the attribute.

        Raises:
            DicomError: BAD_DICOM_ATTRIBUTE, a value pydicom cannot read (the
                detail names the keyword, never the value).
        """
        texts: list[str | None] = []
        for keyword in keywords:
            if keyword not in self.dataset:
                texts.append(None)
                continue
            try:
                value = self.dataset[keyword].value
            except Exception as error:
                raise DicomError(
                    Reason.BAD_DICOM_ATTRIBUTE, f"{keyword}: unreadable ({type(error).__name__})"
                ) from error
            if isinstance(value, MultiValue):
                texts.append("\\".join(map(str, value)))
            elif value is None or isinstance(value, str | int | float | PersonName):
                texts.append("" if value is None else str(value))
            else:  # bytes, a sequence of items: never a column's value
                raise DicomError(
                    Reason.BAD_DICOM_ATTRIBUTE, f"{keyword}: {type(value).__name__}, not text"
                )
        return tuple(texts)

    def render(
        self,
        box: tuple[float, float, float, float],
        size: tuple[int, int],
        options: DicomOptions,
        precise: bool,
    ) -> tuple[Image.Image, bool]:
        """Decodes the picture and resizes the region ``box`` of it to ``size``.

        Args:
            box: The source region (left, upper, right, lower), in pixels.
            size: The output (width, height).
            options: The window choice.
            precise: Shrink in float, never in integers (16-bit output).

        Returns:
            The image at ``size``, and whether it is windowed grey: then an F
            image with values in 0..1 (bone bright); else 8-bit RGB.

        Raises:
            DicomError: TRUNCATED_IMAGE, UNSUPPORTED_TRANSFER_SYNTAX or
                UNDECODABLE_IMAGE (also for a pixel module whose values make
                no sense: a rescale slope that is not a number, ...).
        """
        try:
            return self._render(box, size, options, precise)
        except (DicomError, MemoryError):
            raise
        except Exception as error:
            raise DicomError(
                Reason.UNDECODABLE_IMAGE, f"pixel module: {type(error).__name__}: {error}"
            ) from error

    def _render(
        self,
        box: tuple[float, float, float, float],
        size: tuple[int, int],
        options: DicomOptions,
        precise: bool,
    ) -> tuple[Image.Image, bool]:
        ds = self.dataset
        photometric = str(ds.PhotometricInterpretation)
        if photometric not in _GREY or int(ds.get("SamplesPerPixel", 1)) != 1:
            return _resize(Image.fromarray(self._colour()), box, size, precise=False), False
        stored = self._stored(box, size)
        box = (
            box[0] * stored.scale + stored.shift,
            box[1] * stored.scale + stored.shift,
            box[2] * stored.scale + stored.shift,
            box[3] * stored.scale + stored.shift,
        )
        if "ModalityLUTSequence" in ds or (
            "VOILUTSequence" in ds and options.window is Window.STORED
        ):
            grey = _apply_tables(ds, stored.values(), options)
            grey_image = Image.fromarray(grey)
            return _resize(grey_image, box, size, precise=True, area=stored.scale == 1), True
        # The rescale and the window as one affine map then a clip (or sigmoid),
        # applied after the shrink; min-max comes from the decoded values.
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)

        def modality_range() -> tuple[float, float]:
            low, high = sorted(v * slope + intercept for v in stored.extrema())
            return low, high

        low, high, function = _window(ds, options, modality_range)
        # Integer shrinking is within half a decoded unit: fine unless the window
        # spans fewer of those units than the output has steps.
        precise = precise or (high - low) * stored.gain / abs(slope) < 512
        small = _resize(stored.image, box, size, precise=precise, area=stored.scale == 1)
        values = np.asarray(small, dtype=np.float32) * np.float32(slope / stored.gain)
        values += np.float32(intercept - stored.offset * slope)
        grey = _voi(values, low, high, function)
        if photometric == "MONOCHROME1":
            grey = np.float32(1.0) - grey
        return Image.fromarray(grey), True

    def _stored(self, box: tuple[float, float, float, float], size: tuple[int, int]) -> _Stored:
        """Decodes grey stored values, at a reduced JPEG 2000 level where it helps."""
        ds = self.dataset
        if ds.file_meta.TransferSyntaxUID in (JPEG2000, JPEG2000Lossless):
            level = _reduce_level(self.width, self.height, box, size)
            reduced = self._j2k_reduced(level) if level > 0 else None
            if reduced is not None:
                return reduced
        image, offset = _integer_image(self._array())
        return _Stored(image, 1.0, 0.0, offset, 1.0)

    def _j2k_reduced(self, level: int) -> _Stored | None:
        """The codestream decoded by Pillow at a reduced level.

        Returns:
            The decoded values, or None where Pillow's path does not apply (a
            codestream that disagrees with the header, several components) or
            fails: pydicom then decodes the whole and classifies any damage.
        """
        ds = self.dataset
        try:
            frames = int(ds.get("NumberOfFrames") or 1)
            codestream = get_frame(ds.PixelData, self.frame, number_of_frames=frames)
            header = _j2k_header(codestream)
        except Exception:
            return None
        if header is None:
            return None
        precision, signed, levels = header
        if signed != bool(ds.get("PixelRepresentation", 0)) or precision > 16:
            return None
        level = min(level, levels)
        try:
            with Image.open(io.BytesIO(codestream), formats=["JPEG2000"]) as image:
                image.reduce = level  # type: ignore[method-assign,assignment]
                image.load()
                # One more row and column, repeated, for the shifted box's far edge.
                samples = np.asarray(image)
        except MemoryError:
            raise
        except Exception:
            return None
        decoded = Image.fromarray(np.pad(samples, ((0, 1), (0, 1)), mode="edge"))
        # Pillow offsets signed samples by half their range and scales
        # precisions above 8 bits up to 16. Pixel centres: x + 0.5 in the
        # picture is 2**level * k in it, at k + 0.5.
        factor = 1 << level
        return _Stored(
            decoded,
            1 / factor,
            0.5 - 0.5 / factor,
            float(1 << (precision - 1)) if signed else 0.0,
            float(1 << (16 - precision)) if precision > 8 else 1.0,
        )

    def _array(self) -> npt.NDArray[Any]:
        """The frame decoded by pydicom (YBR as RGB)."""
        # pydicom tries python-gdcm first; pylibjpeg-openjpeg decodes JPEG 2000
        # faster (BENCHMARKS.md), so it is asked for where it can.
        decoder = get_decoder(self.dataset.file_meta.TransferSyntaxUID)
        plugin = "pylibjpeg" if "pylibjpeg" in decoder.available_plugins else ""
        try:
            return pixel_array(self.dataset, index=self.frame, decoding_plugin=plugin)
        except MemoryError:
            raise
        except Exception as error:
            raise _decode_error(self.dataset, error) from error

    def _colour(self) -> npt.NDArray[np.uint8]:
        """The frame as 8-bit RGB (palette colour expanded, YBR converted)."""
        ds = self.dataset
        array = self._array()
        if str(ds.PhotometricInterpretation) == "PALETTE COLOR":
            try:
                array = apply_color_lut(array, ds)
            except Exception as error:
                raise DicomError(Reason.UNDECODABLE_IMAGE, f"palette: {error}") from error
        if array.ndim == 2:
            array = np.repeat(array[:, :, None], 3, axis=2)
        if array.ndim != 3 or array.shape[2] != 3:
            raise DicomError(Reason.UNDECODABLE_IMAGE, f"pixel array of shape {array.shape}")
        if array.dtype == np.uint8:
            return np.asarray(array, dtype=np.uint8)
        bits = int(ds.get("BitsStored") or array.dtype.itemsize * 8)
        if str(ds.PhotometricInterpretation) == "PALETTE COLOR":
            bits = 16
        shift = max(bits - 8, 0)
        eight: npt.NDArray[np.uint8] = np.clip(array.astype(np.int64) >> shift, 0, 255).astype(
            np.uint8
        )
        return eight


def _decode_error(dataset: Dataset, error: Exception) -> DicomError:
    """Classifies a pydicom decoding failure."""
    message = str(error)
    syntax = UID(dataset.file_meta.TransferSyntaxUID)
    lowered = message.lower()
    if "does not support" in lowered or "missing dependencies" in lowered:
        return _unsupported(syntax)
    if "less than expected" in lowered or "truncated" in lowered or "end of" in lowered:
        return DicomError(Reason.TRUNCATED_IMAGE, message.splitlines()[0])
    first = message.strip().splitlines()[0] if message.strip() else ""
    return DicomError(Reason.UNDECODABLE_IMAGE, f"{syntax.name}: {type(error).__name__}: {first}")


def _j2k_header(codestream: bytes) -> tuple[int, bool, int] | None:
    """Precision, signedness and decomposition levels of a single-component codestream.

    From the SIZ and COD marker segments (ISO 15444-1 A.5.1, A.6.1); None
    for anything else (several components, a JP2 box wrapper).
    """
    if codestream[:4] != b"\xff\x4f\xff\x51":
        return None
    (components,) = struct.unpack_from(">H", codestream, 40)
    if components != 1:
        return None
    ssiz = codestream[42]
    cod = codestream.find(b"\xff\x52", 4)
    if cod < 0:
        return None
    levels = codestream[cod + 4 + 1 + 4]
    return (ssiz & 0x7F) + 1, bool(ssiz & 0x80), levels


def _reduce_level(
    width: int, height: int, box: tuple[float, float, float, float], size: tuple[int, int]
) -> int:
    """The coarsest JPEG 2000 level that leaves at least a 1.5x shrink after it.

    The wavelet low-pass band is less antialiased than an area average (its
    filters have negative lobes), so it is not used at the output size: the
    shrink after it smooths what it lets through. Measured on the NEMA WG04
    CR RG3 (1760 px, lossy) against a float full-resolution reference: 55 dB
    at 440 px and 49 dB at 200 px, against 40 and 38 dB when the band is taken
    at the output size (``bench/dicom.py`` for chest images; BENCHMARKS.md).

    Pillow (12.x) refuses a level r where a side's remainder modulo 2**r is
    neither 0 nor at least 2**(r-1) (its rounding and OpenJPEG's differ), so
    such levels are not asked for.
    """
    factor = min((box[2] - box[0]) / size[0], (box[3] - box[1]) / size[1]) / _MIN_FINAL_SHRINK
    level = max(0, math.floor(math.log2(factor))) if factor >= 2 else 0
    while level > 0 and not all(
        side % (1 << level) == 0 or side % (1 << level) >= 1 << (level - 1)
        for side in (width, height)
    ):
        level -= 1
    return level


def _integer_image(array: npt.NDArray[Any]) -> tuple[Image.Image, float]:
    """A 2-D stored-value array as a Pillow image, without a float copy.

    Returns:
        The image (L, I;16, I or F) and the offset added to its values
        (signed 8- and 16-bit data are shifted to unsigned, in place).
    """
    if array.ndim != 2:
        raise DicomError(Reason.UNDECODABLE_IMAGE, f"grey pixel array of shape {array.shape}")
    array = array.astype(array.dtype.newbyteorder("="), copy=False)  # big endian files
    if array.dtype == np.int16:
        unsigned = array.view(np.uint16)
        unsigned ^= np.uint16(0x8000)
        return Image.fromarray(unsigned), 32768.0
    if array.dtype == np.int8:
        unsigned8 = array.view(np.uint8)
        unsigned8 ^= np.uint8(0x80)
        return Image.fromarray(unsigned8), 128.0
    if array.dtype in (np.uint8, np.uint16):
        return Image.fromarray(array), 0.0
    if array.dtype in (np.int32, np.uint32) and array.size and np.abs(array).max() < 2**31:
        return Image.fromarray(array.astype(np.int32)), 0.0
    return Image.fromarray(array.astype(np.float32)), 0.0


def _apply_tables(
    ds: Dataset, stored: npt.NDArray[np.int64], options: DicomOptions
) -> npt.NDArray[np.float32]:
    """Modality LUT (pydicom's), then the VOI LUT table or the window; 0..1, polarity-corrected."""
    try:
        modality = apply_modality_lut(stored, ds)
        if "VOILUTSequence" in ds and options.window is Window.STORED:
            out = apply_voi(np.rint(modality).astype(np.int64), ds, index=0)
            bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
            grey = out.astype(np.float32) / np.float32((1 << bits) - 1)
        else:
            values = modality.astype(np.float32)
            low, high, function = _window(
                ds, options, lambda: (float(values.min()), float(values.max()))
            )
            grey = _voi(values, low, high, function)
    except MemoryError:
        raise
    except DicomError:
        raise
    except Exception as error:
        raise DicomError(Reason.UNDECODABLE_IMAGE, f"LUT: {error}") from error
    if str(ds.PhotometricInterpretation) == "MONOCHROME1":
        grey = np.float32(1.0) - grey
    return grey.astype(np.float32, copy=False)


def _first(value: Any) -> float:
    """The first of a multi-valued window attribute."""
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        value = value[0]
    return float(value)


def _window(
    ds: Dataset, options: DicomOptions, modality_range: Callable[[], tuple[float, float]]
) -> tuple[float, float, str]:
    """The window's ends in modality units, and its function.

    For MINMAX (and a file without a window) the window is the image's modality
    range (a pass over the pixels, so only asked for then), mapped linearly.
    """
    if options.window_center is not None and options.window_width is not None:
        return _centre_width(options.window_center, options.window_width, "LINEAR")
    if options.window is Window.STORED and "WindowCenter" in ds and "WindowWidth" in ds:
        try:
            centre, width = _first(ds.WindowCenter), _first(ds.WindowWidth)
        except (TypeError, ValueError, IndexError):
            centre, width = math.nan, math.nan
        if math.isfinite(centre) and math.isfinite(width) and width >= 1:
            function = str(ds.get("VOILUTFunction", "") or "LINEAR").upper()
            if function not in ("LINEAR", "LINEAR_EXACT", "SIGMOID"):
                function = "LINEAR"
            return _centre_width(centre, width, function)
    low, high = modality_range()
    return low, high, "MINMAX"


def _centre_width(centre: float, width: float, function: str) -> tuple[float, float, str]:
    if function == "LINEAR":
        # PS3.3 C.11.2.1.2.1: centre - 0.5 and width - 1.
        return centre - 0.5 - (width - 1) / 2, centre - 0.5 + (width - 1) / 2, function
    return centre - width / 2, centre + width / 2, function


def _voi(
    values: npt.NDArray[np.float32], low: float, high: float, function: str
) -> npt.NDArray[np.float32]:
    """Maps modality values to 0..1 through the window [low, high] (in place)."""
    if high <= low:
        return np.zeros_like(values)
    if function == "SIGMOID":
        centre, width = (low + high) / 2, high - low
        values -= np.float32(centre)
        values *= np.float32(-4.0 / width)
        np.exp(values, out=values)
        values += np.float32(1.0)
        np.reciprocal(values, out=values)
        return values
    values -= np.float32(low)
    values *= np.float32(1.0 / (high - low))
    np.clip(values, 0.0, 1.0, out=values)
    return values


def _resize(
    image: Image.Image,
    box: tuple[float, float, float, float],
    size: tuple[int, int],
    precise: bool,
    area: bool = True,
) -> Image.Image:
    """Resizes the region ``box`` to ``size``.

    Full-resolution pixels shrink by area (the box filter); a JPEG 2000
    low-pass band (``area`` False) and enlargements use Pillow's bilinear
    filter, which widens with the shrink factor: its wavelet filters let more
    through than an area average, and a tent filter of twice the width
    removes it (on RG3: 49 to 55 dB against a float reference, where a box
    filter gave 41 at an exact 2x).
    """
    if precise and image.mode not in ("F", "RGB"):
        image = Image.fromarray(np.asarray(image, dtype=np.float32))
    if image.size == size and box == (0.0, 0.0, float(image.width), float(image.height)):
        return image
    shrinking = (box[2] - box[0]) >= size[0] and (box[3] - box[1]) >= size[1]
    method = Image.Resampling.BOX if shrinking and area else Image.Resampling.BILINEAR
    return image.resize(size, method, box=box)
