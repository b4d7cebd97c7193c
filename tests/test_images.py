"""Tests of framework.images on real chest X-rays and variants derived from them."""

from __future__ import annotations

import functools
import io
import pickle
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import attrs
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from datathon_etl.framework.images import (
    DEFAULT_MAX_PIXELS,
    OUTPUT_FORMATS,
    Aspect,
    ImageError,
    ImageFormat,
    ImageSpec,
    detect_format,
    transform_image,
)
from datathon_etl.framework.quarantine import Reason
from datathon_etl.framework.synthetic import synthetic_cxr_jpeg

DATA = Path(__file__).parent / "data" / "images"
CXR_FILES = sorted(DATA.glob("*.png"))

# --- Building inputs from the real images -------------------------------------------------


@functools.cache
def cxr(index: int = 0) -> Image.Image:
    """A real 512x512 8-bit grayscale chest X-ray."""
    with Image.open(CXR_FILES[index]) as image:
        image.load()
        return image


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def pixels(data: bytes) -> npt.NDArray[np.float64]:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image, dtype=np.float64)


def reference(size: tuple[int, int], image: Image.Image | None = None) -> npt.NDArray[np.float64]:
    """The real image resized in float: what a correct transform approximates."""
    source = cxr() if image is None else image
    resized = source.convert("F").resize(size, Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float64)


def png_chunks(data: bytes) -> list[tuple[int, int, bytes]]:
    """(offset, length, type) of each chunk of a PNG."""
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append((pos, length, data[pos + 4 : pos + 8]))
        pos += 12 + length
    return chunks


def replace_chunk(data: bytes, offset: int, length: int, payload: bytes) -> bytes:
    """Replaces one PNG chunk's payload, with a correct CRC."""
    kind = data[offset + 4 : offset + 8]
    chunk = (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )
    return data[:offset] + chunk + data[offset + 12 + length :]


def png_claiming(width: int, height: int) -> bytes:
    """The real PNG with an IHDR that claims another size (pixel data unchanged)."""
    data = encode(cxr(), "PNG")
    ihdr = data[16:29]
    return replace_chunk(data, 8, 13, struct.pack(">II", width, height) + ihdr[8:])


def png_with_corrupt_idat() -> bytes:
    """The real PNG with scrambled compressed pixels (valid CRCs)."""
    data = encode(cxr(), "PNG")
    offset, length, _ = next(chunk for chunk in png_chunks(data) if chunk[2] == b"IDAT")
    payload = bytearray(data[offset + 8 : offset + 8 + length])
    for i in range(100, 300):
        payload[i] ^= 0x5A
    return replace_chunk(data, offset, length, bytes(payload))


def grey16(low: int, high: int) -> bytes:
    """The real image as a 16-bit PNG whose values span low..high."""
    samples = np.asarray(cxr(), dtype=np.float64)
    scaled = low + (samples - samples.min()) * (high - low) / (samples.max() - samples.min())
    return encode(Image.fromarray(np.round(scaled).astype(np.uint16)), "PNG")


def half_transparent(mode: str) -> bytes:
    """LA or RGBA: left half opaque, right half transparent over white garbage."""
    grey = np.asarray(cxr())
    alpha = np.zeros_like(grey)
    alpha[:, :256] = 255
    colour = grey.copy()
    colour[:, 256:] = 255
    bands = [colour] if mode == "LA" else [colour, colour, colour]
    return encode(Image.fromarray(np.dstack([*bands, alpha])), "PNG")


def palette_with_transparency() -> tuple[bytes, npt.NDArray[np.bool_]]:
    """A palette PNG whose brightest entry is transparent, and where that entry is."""
    image = cxr().convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
    indices = np.asarray(image)
    brightest = int(indices[np.asarray(cxr()) == 255][0])
    return encode(image, "PNG", transparency=brightest), indices == brightest


def red_only() -> bytes:
    """An RGB PNG with the X-ray in the red channel only."""
    grey = np.asarray(cxr())
    zeros = np.zeros_like(grey)
    return encode(Image.fromarray(np.dstack([grey, zeros, zeros])), "PNG")


def jpeg_patched(old: bytes, new: bytes) -> bytes:
    """The real image as a JPEG with the first `old` bytes replaced by `new`."""
    return encode(cxr(), "JPEG").replace(old, new, 1)


def jpeg_scrambled_huffman() -> bytes:
    """The real image as a JPEG whose first Huffman table is scrambled."""
    data = encode(cxr(), "JPEG")
    start = data.index(b"\xff\xc4") + 5
    return (
        data[:start] + bytes(byte ^ 0x55 for byte in data[start : start + 25]) + data[start + 25 :]
    )


def truncated(data: bytes, fraction: float = 0.5) -> bytes:
    return data[: int(len(data) * fraction)]


def scan_cut_then_eoi(data: bytes, kept: float = 0.1) -> bytes:
    """A JPEG with 90% of its scan data cut and its end marker (FF D9) put back.

    libjpeg only warns ("premature end of data segment") and fills the rest
    with grey; Pillow hides the warning.
    """
    scan = data.index(b"\xff\xda")
    return data[: scan + int((len(data) - 2 - scan) * kept)] + b"\xff\xd9"


def png_idat_cut_then_iend(data: bytes) -> bytes:
    """A PNG cut inside its first IDAT chunk (CRC mended), its IEND chunk put back."""
    offset, length, _ = next(chunk for chunk in png_chunks(data) if chunk[2] == b"IDAT")
    cut = replace_chunk(data, offset, length, data[offset + 8 : offset + 8 + length // 10])
    return cut[: offset + 12 + length // 10] + data[data.index(b"IEND") - 4 :]


# --- detect_format ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", ImageFormat.JPEG),
        (b"\xff\xd8\xff\xee", ImageFormat.JPEG),
        (b"\x89PNG\r\n\x1a\n\x00\x00", ImageFormat.PNG),
        (b"", None),
        (b"\xff\xd8", None),
        (b"\x89PNG", None),
        (b"GIF89a", None),
        (b"BM\x00\x00", None),
        (b"II*\x00", None),
        (b"<html>", None),
        (b"\x00" * 128 + b"DICM\x02\x00", ImageFormat.DICOM),
        (b"DICM" + b"\x00" * 128, None),
        (b"\x00" * 128 + b"DIC", None),
    ],
)
def test_detect_format(data: bytes, expected: ImageFormat | None) -> None:
    """The format comes from the magic number alone."""
    assert detect_format(data) == expected


def test_detect_format_ignores_file_name(tmp_path: Path) -> None:
    """A PNG saved as .jpg is still a PNG."""
    path = tmp_path / "mislabelled.jpg"
    path.write_bytes(encode(cxr(), "PNG"))
    assert detect_format(path.read_bytes()) is ImageFormat.PNG


# --- Successful transforms, one row per input variant -------------------------------------

SQUARE = ImageSpec(height=128, width=128, channels=1, format="png")


@attrs.frozen
class Case:
    """An input built from a real X-ray, a spec, and what the output must satisfy."""

    id: str
    make: Callable[[], bytes]
    spec: ImageSpec = SQUARE
    # Mean absolute error bound against `expected` (0..255 scale).
    tolerance: float = 1.5
    expected: Callable[[tuple[int, int]], npt.NDArray[np.float64]] = reference


CASES = [
    Case("grey_png", lambda: encode(cxr(), "PNG"), tolerance=1.0),
    Case(
        "grey_png_second_image",
        lambda: encode(cxr(1), "PNG"),
        expected=lambda s: reference(s, cxr(1)),
    ),
    Case("grey_png_to_jpeg", lambda: encode(cxr(), "PNG"), attrs.evolve(SQUARE, format="jpeg")),
    Case("grey_jpeg_baseline", lambda: encode(cxr(), "JPEG", quality=95)),
    Case("grey_jpeg_progressive", lambda: encode(cxr(), "JPEG", quality=95, progressive=True)),
    Case("ycbcr_jpeg_as_luminance", lambda: encode(cxr().convert("RGB"), "JPEG", quality=95)),
    Case("cmyk_jpeg", lambda: encode(cxr().convert("CMYK"), "JPEG", quality=95), tolerance=2.0),
    # Full range, and a narrow range: both stretched to 0..255, never clipped.
    Case("grey16_png_full_range", lambda: grey16(0, 65535)),
    Case("grey16_png_narrow_range", lambda: grey16(30000, 30400)),
    Case(
        "palette_png",
        lambda: encode(cxr().convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        tolerance=2.0,
    ),
    Case("rgb_png_as_luminance", red_only, expected=lambda s: 0.299 * reference(s)),
    Case(
        "grey_as_rgb", lambda: encode(cxr(), "PNG"), attrs.evolve(SQUARE, channels=3), tolerance=1.0
    ),
    Case(
        "ycbcr_jpeg_as_rgb",
        lambda: encode(cxr().convert("RGB"), "JPEG", quality=95),
        attrs.evolve(SQUARE, channels=3, format="jpeg"),
        tolerance=2.0,
    ),
    Case(
        "upscale",
        lambda: encode(cxr().resize((64, 64)), "PNG"),
        attrs.evolve(SQUARE, height=300, width=300),
        expected=lambda s: reference(s, cxr().resize((64, 64))),
    ),
    Case(
        "non_square_target",
        lambda: encode(cxr(), "JPEG", quality=95),
        attrs.evolve(SQUARE, height=100, width=60),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_transform(case: Case) -> None:
    """Each variant gives exactly the spec'd image, close to the real X-ray resized."""
    out = transform_image(case.make(), case.spec)
    with Image.open(io.BytesIO(out)) as image:
        assert image.format == case.spec.format.pillow_name
        assert image.size == (case.spec.width, case.spec.height)
        assert image.mode == ("L" if case.spec.channels == 1 else "RGB")
    got = pixels(out)
    if case.spec.channels == 3:
        assert np.abs(got[..., 0] - got[..., 2]).mean() < 1.0  # Still grey.
        got = got.mean(axis=2)
    expected = case.expected((case.spec.width, case.spec.height))
    assert np.abs(got - expected).mean() < case.tolerance


def test_png_named_jpg_is_decoded_as_png(tmp_path: Path) -> None:
    """A PNG in a .jpg file gives the same output as the PNG."""
    data = encode(cxr(), "PNG")
    path = tmp_path / "x.jpg"
    path.write_bytes(data)
    assert transform_image(path.read_bytes(), SQUARE) == transform_image(data, SQUARE)


def test_sixteen_bit_narrow_range_uses_its_real_range() -> None:
    """A 16-bit image using 400 of 65536 levels still spans 0..255 (at its own size)."""
    got = pixels(transform_image(grey16(30000, 30400), attrs.evolve(SQUARE, height=512, width=512)))
    assert (got.min(), got.max()) == (0, 255)


@pytest.mark.parametrize("source_mode", ["L", "I;16"])
def test_sixteen_bit_output(source_mode: str) -> None:
    """16-bit PNG out: an 8-bit source scaled by 257, a 16-bit one over its own range."""
    source = cxr() if source_mode == "L" else Image.fromarray(np.asarray(cxr(), np.uint16) * 64)
    spec = ImageSpec(256, 256, format="png", bit_depth=16)
    with Image.open(io.BytesIO(transform_image(encode(source, "PNG"), spec))) as image:
        assert image.mode in ("I;16", "I")
        out = np.asarray(image, dtype=np.float64)
    eight = pixels(transform_image(encode(source, "PNG"), attrs.evolve(spec, bit_depth=8)))
    assert np.abs(out / 257 - eight).max() <= 1
    if source_mode == "L":
        assert np.all(out % 257 == 0)


def test_sixteen_bit_constant_image_is_black() -> None:
    """A 16-bit image of one value has no range and becomes black."""
    data = encode(Image.fromarray(np.full((40, 30), 40000, dtype=np.uint16)), "PNG")
    assert pixels(transform_image(data, SQUARE)).max() == 0


@pytest.mark.parametrize(("mode", "channels"), [("LA", 1), ("RGBA", 1), ("RGBA", 3)])
def test_alpha_is_composited_on_black(mode: str, channels: int) -> None:
    """Transparent pixels become black, whatever colour they carried; opaque ones stay."""
    spec = attrs.evolve(SQUARE, channels=channels)
    got = pixels(transform_image(half_transparent(mode), spec))
    if channels == 3:
        got = got.mean(axis=2)
    expected = reference((128, 128))
    # Away from the seam, which the filter blends.
    assert got[:, 68:].max() == 0
    assert np.abs(got[:, :60] - expected[:, :60]).mean() < 1.5


def test_palette_transparency_is_composited_on_black() -> None:
    """A palette's transparent (bright) entry becomes black; the rest is kept."""
    data, transparent = palette_with_transparency()
    got = pixels(transform_image(data, attrs.evolve(SQUARE, height=512, width=512)))
    assert transparent.any()
    assert np.all(got[transparent] == 0)
    opaque = ~transparent
    assert np.abs(got[opaque] - np.asarray(cxr(), dtype=np.float64)[opaque]).mean() < 2.0


def test_one_bit_png() -> None:
    """A bilevel PNG becomes 8-bit grey."""
    data = encode(cxr().convert("1"), "PNG")
    with Image.open(io.BytesIO(transform_image(data, SQUARE))) as image:
        assert (image.mode, image.size) == ("L", (128, 128))


def test_output_is_deterministic() -> None:
    """The same input and spec give the same bytes."""
    data = encode(cxr(), "JPEG", quality=90)
    spec = attrs.evolve(SQUARE, format="jpeg")
    assert transform_image(data, spec) == transform_image(data, spec)


# --- Aspect modes -------------------------------------------------------------------------

WIDE = (0, 128, 512, 384)  # A 512x256 band of the real image: aspect 2:1.


def wide_png() -> bytes:
    return encode(cxr().crop(WIDE), "PNG")


def test_aspect_stretch_keeps_everything() -> None:
    """Stretch squeezes the whole 2:1 band into the square."""
    got = pixels(transform_image(wide_png(), attrs.evolve(SQUARE, aspect="stretch")))
    assert np.abs(got - reference((128, 128), cxr().crop(WIDE))).mean() < 1.5


def test_aspect_pad_centres_on_black() -> None:
    """Pad fits the 2:1 band into 128x64, centred, black above and below."""
    got = pixels(transform_image(wide_png(), attrs.evolve(SQUARE, aspect=Aspect.PAD)))
    assert got[:32].max() == 0
    assert got[96:].max() == 0
    assert np.abs(got[32:96] - reference((128, 64), cxr().crop(WIDE))).mean() < 1.5


def test_aspect_crop_takes_the_centre() -> None:
    """Crop cuts the central 256x256 of the 2:1 band, then resizes it."""
    got = pixels(transform_image(wide_png(), attrs.evolve(SQUARE, aspect="crop")))
    centre = cxr().crop((128, 128, 384, 384))
    assert np.abs(got - reference((128, 128), centre)).mean() < 1.5


@pytest.mark.parametrize("aspect", list(Aspect))
def test_scaled_jpeg_decode_matches_full_decode(aspect: Aspect) -> None:
    """A big JPEG decoded at a DCT scale stays within 49 dB PSNR of the float full decode."""
    data = synthetic_cxr_jpeg(seed=3, height=1528, width=1272)
    spec = ImageSpec(height=160, width=200, aspect=aspect, format="png")
    with Image.open(io.BytesIO(data)) as full:
        source = full.convert("F")
    width, height = source.size
    if aspect is Aspect.CROP:
        crop_h = width * 160 / 200
        box = (0.0, (height - crop_h) / 2, float(width), (height + crop_h) / 2)
        expected = source.resize((200, 160), Image.Resampling.LANCZOS, box=box)
    elif aspect is Aspect.PAD:
        expected = Image.new("F", (200, 160), 0.0)
        fitted = source.resize((133, 160), Image.Resampling.LANCZOS)
        expected.paste(fitted, (33, 0))
    else:
        expected = source.resize((200, 160), Image.Resampling.LANCZOS)
    error = pixels(transform_image(data, spec)) - np.asarray(expected, dtype=np.float64)
    psnr = 10 * np.log10(255**2 / np.mean(error**2))
    assert psnr >= 49.0


# --- Refusals, one row per kind of bad input ----------------------------------------------


@functools.cache
def random_bytes(size: int) -> bytes:
    return np.random.default_rng(1).bytes(size)


REFUSALS: list[tuple[str, Callable[[], bytes], Reason]] = [
    ("zero_bytes", lambda: b"", Reason.EMPTY_FILE),
    ("random_bytes", lambda: random_bytes(4096), Reason.NOT_AN_IMAGE),
    ("text", lambda: b"subject_id,study_id\n1,2\n", Reason.NOT_AN_IMAGE),
    ("gif", lambda: encode(cxr(), "GIF"), Reason.NOT_AN_IMAGE),
    ("bmp", lambda: encode(cxr(), "BMP"), Reason.NOT_AN_IMAGE),
    ("tiff", lambda: encode(cxr(), "TIFF"), Reason.NOT_AN_IMAGE),
    ("jpeg_magic_then_zeros", lambda: b"\xff\xd8\xff" + bytes(4096), Reason.UNDECODABLE_IMAGE),
    (
        "jpeg_lossless_process",
        lambda: jpeg_patched(b"\xff\xc0", b"\xff\xc3"),
        Reason.UNDECODABLE_IMAGE,
    ),
    ("jpeg_scrambled_huffman_tables", jpeg_scrambled_huffman, Reason.UNDECODABLE_IMAGE),
    (
        "png_magic_then_noise",
        lambda: b"\x89PNG\r\n\x1a\n" + random_bytes(4096),
        Reason.UNDECODABLE_IMAGE,
    ),
    ("png_corrupt_pixels", png_with_corrupt_idat, Reason.UNDECODABLE_IMAGE),
    ("jpeg_truncated", lambda: truncated(encode(cxr(), "JPEG")), Reason.TRUNCATED_IMAGE),
    ("jpeg_truncated_in_header", lambda: encode(cxr(), "JPEG")[:40], Reason.TRUNCATED_IMAGE),
    ("jpeg_missing_end_marker", lambda: encode(cxr(), "JPEG")[:-2], Reason.TRUNCATED_IMAGE),
    (
        "jpeg_progressive_truncated",
        lambda: truncated(encode(cxr(), "JPEG", progressive=True), 0.7),
        Reason.TRUNCATED_IMAGE,
    ),
    (
        "jpeg_ycbcr_truncated",
        lambda: truncated(encode(cxr().convert("RGB"), "JPEG"), 0.9),
        Reason.TRUNCATED_IMAGE,
    ),
    ("png_truncated", lambda: truncated(encode(cxr(), "PNG")), Reason.TRUNCATED_IMAGE),
    (
        "jpeg_scan_cut_then_eoi",
        lambda: scan_cut_then_eoi(encode(cxr(), "JPEG")),
        Reason.TRUNCATED_IMAGE,
    ),
    (
        "jpeg_progressive_scan_cut_then_eoi",
        lambda: scan_cut_then_eoi(encode(cxr(), "JPEG", progressive=True)),
        Reason.TRUNCATED_IMAGE,
    ),
    (
        "jpeg_ycbcr_scan_cut_then_eoi",
        lambda: scan_cut_then_eoi(encode(cxr().convert("RGB"), "JPEG")),
        Reason.TRUNCATED_IMAGE,
    ),
    (
        "jpeg_cmyk_scan_cut_then_eoi",
        lambda: scan_cut_then_eoi(encode(cxr().convert("CMYK"), "JPEG")),
        Reason.TRUNCATED_IMAGE,
    ),
    (
        "png_idat_cut_then_iend",
        lambda: png_idat_cut_then_iend(encode(cxr(), "PNG")),
        Reason.TRUNCATED_IMAGE,
    ),
    ("png_claims_10_gigapixels", lambda: png_claiming(100_000, 100_000), Reason.TOO_MANY_PIXELS),
]


@pytest.mark.parametrize(
    ("make", "reason"), [row[1:] for row in REFUSALS], ids=[row[0] for row in REFUSALS]
)
@pytest.mark.parametrize(
    "spec",
    [SQUARE, attrs.evolve(SQUARE, height=512, width=512, channels=3, format="jpeg")],
    ids=["scaled_decode_grey", "full_decode_colour"],
)
def test_refusal(make: Callable[[], bytes], reason: Reason, spec: ImageSpec) -> None:
    """Each kind of bad input raises ImageError with its own reason, on every decode path."""
    with pytest.raises(ImageError) as caught:
        transform_image(make(), spec)
    assert caught.value.reason is reason
    assert caught.value.detail
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_pixel_limit_is_checked_before_decoding() -> None:
    """A header over max_pixels is refused as such even if its pixel data is corrupt."""
    spec = attrs.evolve(SQUARE, max_pixels=512 * 512 - 1)
    with pytest.raises(ImageError) as caught:
        transform_image(png_with_corrupt_idat(), spec)
    assert caught.value.reason is Reason.TOO_MANY_PIXELS


def test_pixel_limit_defaults_to_pillows() -> None:
    """Above Pillow's limit (but below twice it, where Pillow only warns) we refuse."""
    assert DEFAULT_MAX_PIXELS == 89_478_485
    with pytest.warns(Image.DecompressionBombWarning), pytest.raises(ImageError) as caught:
        transform_image(png_claiming(10_000, 10_000), SQUARE)
    assert caught.value.reason is Reason.TOO_MANY_PIXELS


def test_image_error_pickles() -> None:
    """ImageError survives pickling (Beam ships exceptions between workers)."""
    error = pickle.loads(pickle.dumps(ImageError(Reason.TRUNCATED_IMAGE, "x.jpg: short")))
    assert (error.reason, error.detail, str(error)) == (
        Reason.TRUNCATED_IMAGE,
        "x.jpg: short",
        "truncated_image: x.jpg: short",
    )


# --- ImageSpec ----------------------------------------------------------------------------


def test_image_spec_defaults() -> None:
    """Defaults: grey JPEG at quality 95, stretched like the original pipelines."""
    spec = ImageSpec(height=320, width=320)
    assert (spec.channels, spec.format, spec.jpeg_quality, spec.aspect, spec.max_pixels) == (
        1,
        ImageFormat.JPEG,
        95,
        Aspect.STRETCH,
        DEFAULT_MAX_PIXELS,
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"height": 0},
        {"width": -1},
        {"height": 1.5},
        {"width": True},
        {"channels": 2},
        {"channels": 4},
        {"format": "gif"},
        {"jpeg_quality": 0},
        {"jpeg_quality": 101},
        {"aspect": "zoom"},
        {"max_pixels": 0},
        {"format": "dicom"},
        {"bit_depth": 12},
        {"bit_depth": 16},
        {"bit_depth": 16, "format": "png", "channels": 3},
    ],
    ids=str,
)
def test_image_spec_rejects(changes: dict[str, object]) -> None:
    """Out-of-range spec fields are refused when the spec is made."""
    arguments: dict[str, object] = {"height": 32, "width": 32, **changes}
    with pytest.raises(ValueError):  # noqa: PT011 (attrs and enums word their messages differently)
        ImageSpec(**arguments)  # type: ignore[arg-type]


# --- Properties ---------------------------------------------------------------------------

FUZZ_SPEC = ImageSpec(height=32, width=24, max_pixels=1 << 22)


@functools.cache
def real_encodings() -> tuple[bytes, ...]:
    small = cxr().resize((96, 96))
    return (
        encode(small, "PNG"),
        encode(small, "JPEG", quality=90),
        encode(small, "JPEG", progressive=True),
        encode(small.convert("RGBA"), "PNG"),
    )


@st.composite
def mangled_images(draw: st.DrawFn) -> bytes:
    """A real image truncated, with bytes flipped, or both."""
    data = bytearray(draw(st.sampled_from(real_encodings())))
    for _ in range(draw(st.integers(0, 8))):
        data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    return bytes(data[: draw(st.integers(0, len(data)))])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=2048),
        st.builds(lambda tail: b"\xff\xd8\xff" + tail, st.binary(max_size=2048)),
        st.builds(lambda tail: b"\x89PNG\r\n\x1a\n" + tail, st.binary(max_size=2048)),
        mangled_images(),
    )
)
def test_bad_bytes_raise_only_image_error(data: bytes) -> None:
    """Whatever the bytes, the result is an image of the spec or an ImageError."""
    try:
        out = transform_image(data, FUZZ_SPEC)
    except ImageError:
        return  # Any other exception fails the test.
    with Image.open(io.BytesIO(out)) as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "L", (24, 32))


# Modes Pillow writes as PNG, and those it writes as JPEG.
PNG_MODES = ["L", "LA", "RGB", "RGBA", "P", "I;16"]
JPEG_MODES = ["L", "RGB", "CMYK"]


def random_image(mode: str, width: int, height: int, seed: int) -> Image.Image:
    """A random image of the mode (uniform noise; a random palette for P)."""
    rng = np.random.default_rng(seed)
    bands = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4, "CMYK": 4, "P": 1, "I;16": 1}[mode]
    high = 65535 if mode == "I;16" else 255
    dtype = np.uint16 if mode == "I;16" else np.uint8
    samples = rng.integers(0, high, size=(height, width, bands), endpoint=True).astype(dtype)
    if mode == "P":
        image = Image.fromarray(samples[..., 0]).convert("P")
        image.putpalette(rng.integers(0, 255, size=768, endpoint=True).astype(np.uint8).tobytes())
        return image
    if bands == 1:
        return Image.fromarray(samples[..., 0])
    return Image.frombytes(mode, (width, height), samples.tobytes())


@settings(max_examples=150, deadline=None)
@given(
    source=st.one_of(
        st.tuples(st.just("PNG"), st.sampled_from(PNG_MODES)),
        st.tuples(st.just("JPEG"), st.sampled_from(JPEG_MODES)),
    ),
    source_size=st.tuples(st.integers(1, 300), st.integers(1, 300)),
    seed=st.integers(0, 2**32 - 1),
    spec=st.builds(
        ImageSpec,
        height=st.integers(1, 300),
        width=st.integers(1, 300),
        channels=st.sampled_from([1, 3]),
        format=st.sampled_from(OUTPUT_FORMATS),
        jpeg_quality=st.integers(1, 100),
        aspect=st.sampled_from(list(Aspect)),
    ),
)
def test_any_valid_image_gives_exactly_the_spec(
    source: tuple[str, str], source_size: tuple[int, int], seed: int, spec: ImageSpec
) -> None:
    """Every mode and size of source gives exactly the requested size, channels and format."""
    container, mode = source
    data = encode(random_image(mode, *source_size, seed), container)
    with Image.open(io.BytesIO(transform_image(data, spec))) as image:
        assert image.format == spec.format.pillow_name
        assert image.size == (spec.width, spec.height)
        assert image.mode == ("L" if spec.channels == 1 else "RGB")
        image.load()


@pytest.mark.parametrize(("width", "height"), [(7, 95), (95, 7), (3, 299), (299, 3), (10, 10)])
def test_crop_of_a_source_with_the_target_shape_keeps_it_whole(width: int, height: int) -> None:
    """Found by hypothesis: in floats a 7x95 crop box began a hair above the image."""
    data = io.BytesIO()
    Image.new("L", (width, height), 77).save(data, "PNG")
    spec = ImageSpec(height, width, aspect=Aspect.CROP, format=ImageFormat.PNG)
    with Image.open(io.BytesIO(transform_image(data.getvalue(), spec))) as image:
        assert image.size == (width, height)
        assert image.getextrema() == (77, 77)
