"""DICOM in: real chest radiographs and pydicom's codec files through `transform_image`."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import attrs
import numpy as np
import numpy.typing as npt
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from datathon_etl.framework.images import ImageError, ImageFormat, ImageSpec, transform_image
from datathon_etl.framework.images.dicom import DicomOptions, MultiFrame, Window
from datathon_etl.framework.quarantine import Reason

DATA = Path(__file__).parent / "data" / "dicom"
SPEC = ImageSpec(height=256, width=256, format="png")


def raw(name: str) -> bytes:
    return (DATA / name).read_bytes()


def decode(data: bytes, spec: ImageSpec = SPEC) -> npt.NDArray[np.float64]:
    with Image.open(io.BytesIO(transform_image(data, spec))) as image:
        return np.asarray(image, dtype=np.float64)


def psnr(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], top: float = 255.0) -> float:
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(top**2 / mse)


def dataset(name: str) -> Dataset:
    return pydicom.dcmread(DATA / name)


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def windowed(spec: ImageSpec, **window: object) -> ImageSpec:
    return attrs.evolve(spec, dicom=DicomOptions(**window))  # type: ignore[arg-type]


# --- The NEMA WG04 chest CR -----------------------------------------------------------------


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_chest_cr_uncompressed_and_jpeg2000_give_the_same_picture(bit_depth: int) -> None:
    """RG1 (MONOCHROME1, 15 bits, window 15000/30000): the two encodings agree."""
    spec = attrs.evolve(SPEC, bit_depth=bit_depth)
    top = 255.0 if bit_depth == 8 else 65535.0
    uncompressed = decode(raw("RG1_UNCR_quarter.dcm"), spec)
    jpeg2000 = decode(raw("RG1_J2KI.dcm"), spec)
    assert psnr(uncompressed, jpeg2000, top) >= 40


@pytest.mark.parametrize("name", ["RG1_UNCR_quarter.dcm", "RG1_J2KI.dcm"])
def test_chest_cr_bones_bright_lungs_dark(name: str) -> None:
    """MONOCHROME1 is shown with bone bright: the spine outshines both lung fields."""
    picture = decode(raw(name))
    rows = slice(70, 170)  # mid-chest, above the diaphragm
    spine = picture[rows, 118:138].mean()
    right_lung, left_lung = picture[rows, 50:90].mean(), picture[rows, 166:206].mean()
    assert spine > right_lung + 30
    assert spine > left_lung + 30


def test_monochrome1_is_inverted_after_the_window() -> None:
    """The same pixels labelled MONOCHROME2 give the negative of the picture.

    RG1's window (15000 +- 15000) is not centred on its 15-bit range, so
    inverting the stored values before windowing would give another picture.
    """
    ds = dataset("RG1_UNCR_quarter.dcm")
    monochrome1 = decode(to_bytes(ds))
    ds.PhotometricInterpretation = "MONOCHROME2"
    monochrome2 = decode(to_bytes(ds))
    assert np.abs(monochrome1 + monochrome2 - 255).max() <= 1


def reference_window(
    stored: npt.NDArray[np.float64], centre: float, width: float, function: str
) -> npt.NDArray[np.float64]:
    """PS3.3 C.11.2.1.2-3, in float64 at full resolution, to 0..1."""
    if function == "LINEAR":
        out = ((stored - (centre - 0.5)) / (width - 1) + 0.5).clip(0, 1)
    elif function == "LINEAR_EXACT":
        out = ((stored - centre) / width + 0.5).clip(0, 1)
    else:
        out = 1 / (1 + np.exp(-4 * (stored - centre) / width))
    return np.asarray(out, dtype=np.float64)


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
@pytest.mark.parametrize("window", [(15000, 30000), (9000, 6000)])
def test_voi_lut_function_matches_the_standard(function: str, window: tuple[int, int]) -> None:
    """The window with each VOI LUT Function, against the standard's formula in float."""
    ds = dataset("RG1_UNCR_quarter.dcm")
    ds.WindowCenter, ds.WindowWidth = window
    ds.VOILUTFunction = function
    stored = ds.pixel_array.astype(np.float64)
    expected = 1 - reference_window(stored, *window, function)  # MONOCHROME1
    reference = Image.fromarray(expected.astype(np.float32)).resize(
        (256, 256), Image.Resampling.BOX
    )
    assert psnr(decode(to_bytes(ds)), np.asarray(reference) * 255) >= 40


def test_first_of_several_windows_is_used() -> None:
    ds = dataset("RG1_UNCR_quarter.dcm")
    first = decode(to_bytes(ds))
    ds.WindowCenter, ds.WindowWidth = [15000, 3000], [30000, 2000]
    assert np.array_equal(decode(to_bytes(ds)), first)


def test_window_flags() -> None:
    """Fixed at the stored window is the stored picture; min-max is another."""
    data = raw("RG1_UNCR_quarter.dcm")
    stored = decode(data)
    fixed = decode(data, windowed(SPEC, window="fixed", window_center=15000, window_width=30000))
    assert np.array_equal(fixed, stored)
    minmax = decode(data, windowed(SPEC, window=Window.MINMAX))
    # The source's extremes, which the shrunk picture nearly reaches.
    assert minmax.min() <= 5
    assert minmax.max() >= 250
    assert psnr(minmax, stored) < 35


def test_voi_lut_sequence_is_used() -> None:
    """A VOI LUT table (here a 4-step staircase) replaces the window."""
    ds = dataset("RG1_UNCR_quarter.dcm")
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 16]
    item.add_new(0x00283006, "US", [(i // 1024) * 21845 for i in range(4096)])  # LUT Data
    ds.VOILUTSequence = [item]
    # Stored values >= 4095 take the last entry.
    stored = np.minimum(ds.pixel_array.astype(np.int64), 4095)
    steps = 1 - (stored // 1024) / 3
    reference = Image.fromarray(steps.astype(np.float32)).resize((256, 256), Image.Resampling.BOX)
    assert psnr(decode(to_bytes(ds)), np.asarray(reference) * 255) >= 40


def test_modality_lut_sequence_is_used() -> None:
    """A Modality LUT table (here: halve the stored value) comes before the window."""
    ds = dataset("RG1_UNCR_quarter.dcm")
    item = Dataset()
    item.LUTDescriptor = [32768, 0, 16]
    item.ModalityLUTType = "US"
    halves = (np.arange(32768) // 2).astype("<u2").tobytes()
    item.add_new(0x00283006, "OW", halves)  # LUT Data: 64 KiB, too long for US
    ds.ModalityLUTSequence = [item]
    halved = (ds.pixel_array // 2).astype(np.float64)
    expected = 1 - reference_window(halved, 15000, 30000, "LINEAR")
    reference = Image.fromarray(expected.astype(np.float32)).resize(
        (256, 256), Image.Resampling.BOX
    )
    assert psnr(decode(to_bytes(ds)), np.asarray(reference) * 255) >= 40


def test_signed_data_is_read_as_signed() -> None:
    """CT (signed, rescaled to HU): the same values stored unsigned give the same picture."""
    ds = dataset("CT_small.dcm")
    signed = decode(to_bytes(ds))
    values = ds.pixel_array.astype(np.int32) + 32768
    ds.PixelData = values.astype(np.uint16).tobytes()
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = float(ds.RescaleIntercept) - 32768 * float(ds.RescaleSlope)
    assert np.array_equal(decode(to_bytes(ds)), signed)


@pytest.mark.parametrize("bits", [8, 10, 12, 16])
def test_any_bits_stored(bits: int) -> None:
    """The chest CR requantised to 8..16 bits, its window scaled with it: the same picture."""
    ds = dataset("RG1_UNCR_quarter.dcm")
    reference = decode(to_bytes(ds))
    scale = (2**bits - 1) / (2**15 - 1)
    values = np.rint(ds.pixel_array * scale)
    ds.BitsAllocated = 8 if bits == 8 else 16
    ds.BitsStored, ds.HighBit = bits, bits - 1
    ds.PixelData = values.astype(np.uint8 if bits == 8 else np.uint16).tobytes()
    ds.WindowCenter, ds.WindowWidth = 15000 * scale, 30000 * scale
    assert psnr(decode(to_bytes(ds)), reference) >= 40


@pytest.mark.parametrize("size", [440, 200])
def test_jpeg2000_reduced_level_matches_a_full_decode(size: int) -> None:
    """RG3 (1760 px, lossy JPEG 2000) at a reduced level against a full decode.

    The reference is windowed in float then shrunk by area. It fails if the level
    is used at the output size, or if its samples' siting is ignored.
    """
    data = raw("RG3_J2KI.dcm")
    ds = pydicom.dcmread(io.BytesIO(data))
    window = float(ds.WindowCenter), float(ds.WindowWidth)
    grey = 1 - reference_window(ds.pixel_array.astype(np.float64), *window, "LINEAR")
    area = Image.fromarray(grey.astype(np.float32)).resize((size, size), Image.Resampling.BOX)
    spec = ImageSpec(height=size, width=size, format="png")
    assert psnr(decode(data, spec), np.asarray(area) * 255) >= 45


@pytest.mark.parametrize("aspect", ["stretch", "pad", "crop"])
@pytest.mark.parametrize("name", ["RG1_J2KI.dcm", "RG3_J2KI.dcm", "SC_rgb_jpeg_dcmtk.dcm"])
def test_aspect_and_channels_on_every_decode_path(aspect: str, name: str) -> None:
    """Reduced JPEG 2000 level and full decode, grey and colour: exactly the spec."""
    for channels in (1, 3):
        spec = ImageSpec(height=96, width=160, channels=channels, format="png", aspect=aspect)
        picture = decode(raw(name), spec)
        assert picture.shape == ((96, 160) if channels == 1 else (96, 160, 3))
        if aspect == "pad":
            assert picture[:, :8].max() == 0  # black borders left and right


@pytest.mark.parametrize("aspect", ["crop", "pad", "stretch"])
def test_reduced_jpeg2000_level_keeps_the_geometry(aspect: str) -> None:
    """Crop and pad through a reduced JPEG 2000 level match the same pixels uncompressed."""
    data = raw("RG3_J2KI.dcm")
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.PixelData = ds.pixel_array.tobytes()  # decoded whole by pydicom
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    spec = ImageSpec(height=220, width=110, format="png", aspect=aspect)
    assert psnr(decode(data, spec), decode(to_bytes(ds), spec)) >= 45


def test_sixteen_bit_output_keeps_the_windowed_range() -> None:
    data = raw("RG1_J2KI.dcm")
    eight = decode(data)
    sixteen = decode(data, attrs.evolve(SPEC, bit_depth=16))
    assert sixteen.max() > 255
    assert np.abs(sixteen / 257 - eight).max() <= 1


def test_nih_dicom_matches_its_png_twin() -> None:
    """The 8-bit NIH DICOM and a PNG of its pixels give the same picture.

    The DICOM has no window; an identity window (0..255) is asked for, as a
    PNG is shown; without it (min-max) the picture is stretched a little.
    """
    data = raw("nih_chestxray14_dx.dcm")
    buffer = io.BytesIO()
    Image.fromarray(pydicom.dcmread(io.BytesIO(data)).pixel_array).save(buffer, format="PNG")
    twin = decode(buffer.getvalue())
    identity = windowed(SPEC, window="fixed", window_center=128, window_width=256)
    assert psnr(decode(data, identity), twin) >= 40
    assert psnr(decode(data), twin) >= 30


# --- Codecs and refusals ------------------------------------------------------------------


def test_the_same_mr_image_in_four_transfer_syntaxes() -> None:
    """Big endian, RLE, JPEG 2000 lossless and JPEG-LS lossless: identical outputs."""
    outputs = [
        decode(raw(name))
        for name in (
            "MR_small_bigendian.dcm",
            "MR_small_RLE.dcm",
            "MR_small_jp2klossless.dcm",
            "MR_small_jpeg_ls_lossless.dcm",
        )
    ]
    for output in outputs[1:]:
        assert np.array_equal(output, outputs[0])


@pytest.mark.parametrize("name", ["SC_rgb_jpeg_dcmtk.dcm", "SC_ybr_full_422_uncompressed.dcm"])
def test_colour(name: str) -> None:
    """YBR colour (JPEG, 4:2:2 uncompressed) comes out as RGB."""
    colour = decode(raw(name), attrs.evolve(SPEC, channels=3, format="png"))
    assert colour.shape == (256, 256, 3)
    assert np.abs(colour[..., 0] - colour[..., 2]).max() > 100
    grey = decode(raw(name))
    assert grey.shape == (256, 256)


def test_first_frame_by_flag() -> None:
    data = raw("SC_rgb_rle_2frame.dcm")
    first = decode(data, windowed(SPEC, multi_frame=MultiFrame.FIRST))
    assert first.shape == (256, 256)


def _without_pixels() -> bytes:
    ds = dataset("CT_small.dcm")
    del ds.PixelData
    return to_bytes(ds)


def _encapsulated_pdf() -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.104.1")
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DOC"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = b"%PDF-1.4\n%%EOF\n"
    return to_bytes(ds)


def _with_syntax(uid: str) -> Callable[[], bytes]:
    def make() -> bytes:
        ds = dataset("CT_small.dcm")
        ds.file_meta.TransferSyntaxUID = UID(uid)
        ds.PixelData = encapsulate([bytes(ds.PixelData)])
        return to_bytes(ds)

    return make


def _cut(name: str, kept: float) -> Callable[[], bytes]:
    return lambda: raw(name)[: int(len(raw(name)) * kept)]


REFUSALS: list[tuple[str, Callable[[], bytes], Reason, str]] = [
    ("not_dicom", lambda: b"\x00" * 128 + b"NOPE" + b"\x00" * 64, Reason.NOT_AN_IMAGE, "DICOM"),
    # Garbage after the prefix reads as an element that runs past the end.
    (
        "dicm_then_garbage",
        lambda: b"\x00" * 128 + b"DICM" + b"\xff" * 64,
        Reason.TRUNCATED_IMAGE,
        "",
    ),
    ("no_pixel_data", _without_pixels, Reason.NO_PIXEL_DATA, ""),
    ("structured_report", lambda: raw("test-SR.dcm"), Reason.NON_IMAGE_DICOM, "structured report"),
    ("encapsulated_pdf", _encapsulated_pdf, Reason.NON_IMAGE_DICOM, "PDF"),
    ("two_frames", lambda: raw("SC_rgb_rle_2frame.dcm"), Reason.MULTI_FRAME, "2 frames"),
    ("pixel_data_too_short", lambda: raw("MR_truncated.dcm"), Reason.TRUNCATED_IMAGE, "8130"),
    ("jpeg2000_cut", _cut("RG1_J2KI.dcm", 0.5), Reason.TRUNCATED_IMAGE, ""),
    ("uncompressed_cut", _cut("RG1_UNCR_quarter.dcm", 0.5), Reason.TRUNCATED_IMAGE, ""),
    ("cut_in_header", _cut("CT_small.dcm", 0.02), Reason.TRUNCATED_IMAGE, ""),
    (
        "jpeg_12_bit",
        lambda: raw("JPGExtended.dcm"),
        Reason.UNSUPPORTED_TRANSFER_SYNTAX,
        "pylibjpeg-libjpeg",
    ),
    (
        "mpeg2_video",
        _with_syntax("1.2.840.10008.1.2.4.100"),
        Reason.UNSUPPORTED_TRANSFER_SYNTAX,
        "MPEG2",
    ),
]


@pytest.mark.parametrize(
    ("make", "reason", "named"), [row[1:] for row in REFUSALS], ids=[row[0] for row in REFUSALS]
)
def test_refusal(make: Callable[[], bytes], reason: Reason, named: str) -> None:
    """Each kind of bad DICOM raises ImageError with its reason, and says what it is."""
    with pytest.raises(ImageError) as caught:
        transform_image(make(), SPEC)
    assert caught.value.reason is reason
    assert named in caught.value.detail


def test_every_codec_file_decodes_or_is_refused_with_its_reason() -> None:
    """Each committed DICOM file: a picture of the spec, or its expected reason."""
    refused = {
        "JPGExtended.dcm": Reason.UNSUPPORTED_TRANSFER_SYNTAX,
        "MR_truncated.dcm": Reason.TRUNCATED_IMAGE,
        "SC_rgb_rle_2frame.dcm": Reason.MULTI_FRAME,
        "test-SR.dcm": Reason.NON_IMAGE_DICOM,
    }
    names = sorted(path.name for path in DATA.glob("*.dcm"))
    assert len(names) == 15
    for name in names:
        if name in refused:
            with pytest.raises(ImageError) as caught:
                transform_image(raw(name), SPEC)
            assert caught.value.reason is refused[name], name
        else:
            assert decode(raw(name)).shape == (256, 256), name


@st.composite
def mangled_dicom(draw: st.DrawFn) -> bytes:
    """A real small DICOM file with a few header bytes changed, then maybe cut."""
    name = draw(st.sampled_from(["CT_small.dcm", "MR_small_RLE.dcm", "SC_rgb_jpeg_dcmtk.dcm"]))
    data = bytearray(raw(name))
    for _ in range(draw(st.integers(1, 8))):
        data[draw(st.integers(132, min(len(data), 1500) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(132, len(data)))])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mangled_dicom())
def test_mangled_dicom_raises_only_image_error(data: bytes) -> None:
    """Whatever the damage, the result is an image of the spec or an ImageError."""
    spec = ImageSpec(height=32, width=24, format="png")
    try:
        out = transform_image(data, spec)
    except ImageError:
        return  # Any other exception fails the test.
    with Image.open(io.BytesIO(out)) as image:
        assert (image.format, image.mode, image.size) == ("PNG", "L", (24, 32))


def test_a_value_pydicom_cannot_convert_is_undecodable_not_a_traceback() -> None:
    """SOP Class UID with an unknown VR (a NUL for its second letter).

    dcmread accepts the file; pydicom fails when the value is first read.
    Found by the test above (hypothesis).
    """
    data = raw("MR_small_RLE.dcm")
    element = b"\x08\x00\x16\x00UI"
    assert data.count(element) == 1
    with pytest.raises(ImageError) as caught:
        transform_image(data.replace(element, b"\x08\x00\x16\x00U\x00"), SPEC)
    assert caught.value.reason is Reason.UNDECODABLE_IMAGE
    assert "(0008,0016)" in caught.value.detail


def test_dicom_is_found_by_its_prefix_not_its_name() -> None:
    from datathon_etl.framework.images import detect_format

    assert detect_format(raw("CT_small.dcm")) is ImageFormat.DICOM
    assert detect_format(b"DICM" + b"\x00" * 200) is None


@pytest.mark.parametrize(
    "changes",
    [
        {"window": "fixed"},
        {"window": "fixed", "window_center": 10},
        {"window": "stored", "window_center": 10, "window_width": 20},
        {"window": "fixed", "window_center": 10, "window_width": 0.5},
        {"window": "auto"},
        {"multi_frame": "all"},
    ],
    ids=str,
)
def test_dicom_options_reject(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        DicomOptions(**changes)  # type: ignore[arg-type]
