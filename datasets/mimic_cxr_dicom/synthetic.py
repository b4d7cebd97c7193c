"""A deterministic, clearly SYNTHETIC sample in the MIMIC-CXR DICOM layout.

MIMIC-CXR-JPG's synthetic sample (`datathon_etl.datasets.mimic_cxr_jpg.synthetic`,
without its defects or tars) with ``.dcm`` files for ``.jpg``: uncompressed
8-bit MONOCHROME2 DICOM whose headers carry the attributes the data set
declares (ViewPosition, Rows, Columns, PixelSpacing, PatientSex, Manufacturer)
and no identifying attribute. Of the CSVs, those the data set reads: the
split and the two label files (no metadata CSV: the view comes from each header).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import attrs
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from datathon_etl.datasets.mimic_cxr_dicom.parsing import format_path
from datathon_etl.datasets.mimic_cxr_jpg import synthetic as jpg
from datathon_etl.framework.synthetic import synthetic_cxr_pixels

__all__ = ["VIEWS", "synthetic_cxr_dicom", "write_sample"]

VIEWS = ("PA", "LATERAL", "AP", "LL", "")
"""ViewPosition values, cycled by seed (blank: the view is unknown)."""
_DIGITAL_X_RAY = UID("1.2.840.10008.5.1.4.1.1.1.1")
"""Digital X-Ray Image Storage - For Presentation."""


def synthetic_cxr_dicom(seed: int, height: int, width: int) -> bytes:
    """An uncompressed 8-bit MONOCHROME2 DICOM file of `synthetic_cxr_pixels`.

    Its view is ``VIEWS[seed % len(VIEWS)]``; sex and manufacturer vary with the seed too.
    """
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = _DIGITAL_X_RAY
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[f"datathon-etl {seed}"])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = _DIGITAL_X_RAY, meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.ViewPosition = VIEWS[seed % len(VIEWS)]
    ds.PatientSex = ("M", "F", "")[seed % 3]
    ds.Manufacturer = ("SYNTHETIC A", "SYNTHETIC B")[seed % 2]
    ds.PixelSpacing = [0.139, 0.139]
    ds.Rows, ds.Columns = height, width
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = synthetic_cxr_pixels(seed, height, width).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def write_sample(
    out_dir: Path,
    *,
    images: int = 40,
    seed: int = 0,
    dicom: Callable[[int, int, int], bytes] = synthetic_cxr_dicom,
) -> jpg.Sample:
    """Writes the sample: the ``files/`` tree and the release's CSVs.

    Args:
        out_dir: Folder to write into (created).
        images: Number of images, all well formed.
        seed: Seeds ids, labels and pixels: the same seed writes the same files.
        dicom: Makes an image's bytes from (seed, height, width); a bench at
            scale passes one that cycles through a few made in advance.

    Returns:
        What was written (``images`` paths end in ``.dcm``; no tars).
    """
    sample = jpg.write_sample(
        out_dir,
        images=images,
        seed=seed,
        defects=False,
        jpeg=dicom,
        tars=False,
        format_path=format_path,
    )
    csvs = dict(sample.csvs)
    csvs.pop("metadata").unlink()
    return attrs.evolve(sample, csvs=csvs)
