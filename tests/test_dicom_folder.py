"""A tar of real DICOM files through `untar`, then `images-to-tfrecord`, as a user runs them."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from datathon_etl.framework.manifest import Manifest
from datathon_etl.framework.pipelines import images_to_tfrecord, untar
from datathon_etl.framework.quarantine import Quarantined, Reason

DATA = Path(__file__).parent / "data" / "dicom"

# Member name -> committed file; the NIH one has no extension, as many PACS exports.
NIH = "1.3.6.1.4.1.11129.5.5.110503645592756492"
MEMBERS = {
    "dicom/chest_cr_j2k.dcm": "RG1_J2KI.dcm",
    "dicom/chest_cr.dcm": "RG1_UNCR_quarter.dcm",
    f"dicom/{NIH}": "nih_chestxray14_dx.dcm",
    "dicom/ct.dcm": "CT_small.dcm",
    "dicom/truncated.dcm": "MR_truncated.dcm",
    "dicom/report.dcm": "test-SR.dcm",
    "dicom/two_frames.dcm": "SC_rgb_rle_2frame.dcm",
    "dicom/jpeg_12_bit.dcm": "JPGExtended.dcm",
}
REFUSED = {
    "truncated.dcm": Reason.TRUNCATED_IMAGE,
    "report.dcm": Reason.NON_IMAGE_DICOM,
    "two_frames.dcm": Reason.MULTI_FRAME,
    "jpeg_12_bit.dcm": Reason.UNSUPPORTED_TRANSFER_SYNTAX,
    "not_dicom.dcm": Reason.NOT_AN_IMAGE,
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tar's members, written by `datathon-etl untar`."""
    root = tmp_path_factory.mktemp("dicom")
    with tarfile.open(root / "dicom.tar", "w") as tar:
        for member, name in MEMBERS.items():
            tar.add(DATA / name, arcname=member)
        data = b"\x00" * 200
        info = tarfile.TarInfo("dicom/not_dicom.dcm")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    out = root / "untarred"
    assert untar.main(["--input_tars", str(root / "dicom.tar"), "--output_dir", str(out)]) == 0
    labels = root / "labels.csv"
    paths = [member.removeprefix("dicom/") for member in MEMBERS] + ["not_dicom.dcm"]
    labels.write_text("path,label\n" + "".join(f"{p},{i}\n" for i, p in enumerate(paths)))
    return root


def _run(folder: Path, out: Path, *extra: str) -> int:
    return images_to_tfrecord.main(
        [
            "--input_prefix",
            f"{folder}/untarred/dicom/",
            "--query",
            f"SELECT path, label FROM read_csv('{folder}/labels.csv')",
            "--output_image_shape",
            "128",
            "128",
            "--output_image_format",
            "png",
            "--output_tfrecord_dir",
            str(out / "tfrecords"),
            "--output_dir",
            str(out),
            "--max_bad_fraction",
            "1",
            *extra,
        ]
    )


def _pictures(out: Path) -> dict[str, np.ndarray]:
    features = {
        "png_bytes": tf.io.FixedLenFeature([], tf.string),
        "path": tf.io.FixedLenFeature([], tf.string),
    }
    shards = sorted(str(p) for p in (out / "tfrecords").glob("data-*.tfrecord"))
    found = {}
    for record in tf.data.TFRecordDataset(shards):
        parsed = tf.io.parse_single_example(record, features)
        with Image.open(io.BytesIO(parsed["png_bytes"].numpy())) as image:
            found[parsed["path"].numpy().decode()] = np.asarray(image)
    return found


@pytest.mark.parametrize("bit_depth", ["8", "16"])
def test_a_tar_of_dicom_files_becomes_tfrecords(folder: Path, tmp_path: Path, bit_depth: str):
    """Readable DICOM (.dcm or no extension) is written; every bad file has its reason."""
    assert _run(folder, tmp_path, "--output_bit_depth", bit_depth) == 0
    manifest = Manifest.read(str(tmp_path / "_manifest.json"))
    manifest.check()
    assert manifest.stages["images"].input == 9
    assert manifest.stages["images"].written == 4
    records = [
        Quarantined.from_json(line)
        for f in (tmp_path / "_quarantine").glob("*.jsonl")
        for line in f.read_text().splitlines()
    ]
    assert {r.path: r.reason for r in records} == REFUSED
    pictures = _pictures(tmp_path)
    assert set(pictures) == {"chest_cr_j2k.dcm", "chest_cr.dcm", "ct.dcm", NIH}
    top = 255 if bit_depth == "8" else 65535
    for picture in pictures.values():
        assert picture.shape == (128, 128)
        assert picture.dtype == (np.uint8 if bit_depth == "8" else np.uint16)
        assert picture.max() > top // 2
    for name in ("chest_cr_j2k.dcm", "chest_cr.dcm"):
        chest = pictures[name].astype(np.float64) / top
        rows = slice(35, 85)
        assert chest[rows, 59:69].mean() > chest[rows, 25:45].mean() + 0.1  # spine over lung
