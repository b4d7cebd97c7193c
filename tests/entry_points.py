"""Every pipeline entry point, with a command line over inputs at one place.

The argument lists name the files the Dataflow and pre-flight tests put
under ``inputs``: ``*.tar`` and ``*.csv.gz`` (a MIMIC-CXR sample),
``jpg/*.tar`` and ``jpg/*.csv.gz`` (a MIMIC-CXR-JPG sample),
``dicom/files/...`` and ``dicom/*.csv.gz`` (a MIMIC-CXR DICOM sample),
``nih/images/*.png``, ``nih/*.csv`` and ``nih/*_list.txt`` (an NIH
ChestX-ray14 sample), ``chexpert/CheXpert-v1.0-small/...`` (a CheXpert one), ``a.tar``,
``*.png``, ``*.txt.gz``, ``*.tfrecord`` and ``model.keras``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from datathon_etl.framework.pipelines import decompress, images_to_tfrecord, untar
from datathon_etl.generated.chexpert import ingest as chexpert_ingest
from datathon_etl.generated.mimic_cxr import infer, ingest
from datathon_etl.generated.mimic_cxr_dicom import ingest as dicom_ingest
from datathon_etl.generated.mimic_cxr_jpg import infer as jpg_infer
from datathon_etl.generated.mimic_cxr_jpg import ingest as jpg_ingest
from datathon_etl.generated.nih_cxr14 import ingest as nih_ingest

__all__ = ["ENTRY_POINTS", "TABLE_FLAGS", "argv_for"]

Main = Callable[[Sequence[str] | None], int]

ENTRY_POINTS: dict[str, Main] = {
    "mimic_cxr ingest": ingest.main,
    "images-to-tfrecord": images_to_tfrecord.main,
    "untar": untar.main,
    "decompress": decompress.main,
    "mimic_cxr infer": infer.main,
    "mimic_cxr_jpg ingest": jpg_ingest.main,
    "mimic_cxr_jpg infer": jpg_infer.main,
    "mimic_cxr_dicom ingest": dicom_ingest.main,
    "nih_cxr14 ingest": nih_ingest.main,
    "chexpert ingest": chexpert_ingest.main,
}
"""The name each prints its errors under -> its ``main(argv)``."""

TABLE_FLAGS = {
    "mimic_cxr ingest": "--output_table",
    "images-to-tfrecord": "--labels_table",
    "mimic_cxr infer": "--predictions_table",
    "mimic_cxr_jpg ingest": "--output_table",
    "mimic_cxr_jpg infer": "--predictions_table",
    "mimic_cxr_dicom ingest": "--output_table",
    "nih_cxr14 ingest": "--output_table",
    "chexpert ingest": "--output_table",
}
"""The commands that take a table, and the flag that names it."""

_CSV = Path(__file__).parent / "data" / "labels" / "nih_sample_rows.csv"
_QUERY = f'SELECT "Image Index" AS path, "Patient Age" AS age FROM read_csv(\'{_CSV}\')'


def argv_for(command: str, inputs: str, output: str, table: str | None = None) -> list[str]:
    """A command line for ``command`` over ``inputs``, writing under ``output``.

    Args:
        command: A key of `ENTRY_POINTS`.
        inputs: The folder or gs:// prefix holding the inputs.
        output: The ``--output_dir``.
        table: For the commands in `TABLE_FLAGS`, the table to name; without
            it, the default (images-to-tfrecord: a DuckDB query of a CSV).
    """
    named = [TABLE_FLAGS[command], table] if table and command in TABLE_FLAGS else []
    if command in ("mimic_cxr ingest", "mimic_cxr_jpg ingest"):
        folder = inputs if command == "mimic_cxr ingest" else f"{inputs}/jpg"
        return [
            *("--input_tars", f"{folder}/*.tar", "--input_csv", f"{folder}/*.csv.gz"),
            *("--output_dir", output, "--output_jpg_dir", f"{output}/jpg"),
            *("--output_tfrecord_dir", f"{output}/tfrecords", *named),
        ]
    if command == "mimic_cxr_dicom ingest":
        return [
            *("--input_prefix", f"{inputs}/dicom/files/"),
            *("--input_csv", f"{inputs}/dicom/*.csv.gz"),
            *("--output_dir", output, "--output_jpg_dir", f"{output}/jpg"),
            *("--output_tfrecord_dir", f"{output}/tfrecords", *named),
        ]
    if command == "nih_cxr14 ingest":
        return [
            *("--input_prefix", f"{inputs}/nih/images/"),
            *("--input_csv", f"{inputs}/nih/Data_Entry_2017_v2020.csv"),
            *("--split_lists", f"{inputs}/nih/*_list.txt"),
            *("--output_dir", output, "--output_jpg_dir", f"{output}/jpg"),
            *("--output_tfrecord_dir", f"{output}/tfrecords", *named),
        ]
    if command == "chexpert ingest":
        folder = f"{inputs}/chexpert/CheXpert-v1.0-small"
        return [
            *("--input_prefix", f"{folder}/", "--path_match_regex", r".*\.jpg"),
            *("--input_csv", f"{folder}/*.csv"),
            *("--output_dir", output, "--output_jpg_dir", f"{output}/jpg"),
            *("--output_tfrecord_dir", f"{output}/tfrecords", *named),
        ]
    if command == "images-to-tfrecord":
        return [
            *("--input_prefix", f"{inputs}/", "--path_match_regex", r".*\.png"),
            *(named or ["--query", _QUERY]),
            *("--output_tfrecord_dir", f"{output}/tfrecords", "--output_dir", output),
        ]
    if command == "untar":
        return ["--input_tars", f"{inputs}/a.tar", "--output_dir", output]
    if command == "decompress":
        return ["--input_pattern", f"{inputs}/*.txt.gz", "--output_dir", output]
    if command in ("mimic_cxr infer", "mimic_cxr_jpg infer"):
        model = f"{inputs}/model.keras"
        return [
            *("--input_tfrecord_pattern", f"{inputs}/*.tfrecord", "--keras_model", model),
            *("--output_dir", output, *named),
        ]
    raise KeyError(command)
