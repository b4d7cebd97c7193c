"""The MIMIC-CXR ingestion on 2 local workers gives what it gives on one.

``--direct_running_mode=multi_processing`` runs the pipeline's steps in
worker processes that receive them pickled and import the project afresh,
as Dataflow workers do: a step that does not pickle, relies on state set up
in the launching process, or writes where the other processes cannot see
fails here, or its output differs. Local files only (the emulator patches
do not reach worker processes). ``multi_threading`` (the recommended local
mode) runs bundles on threads of one process: a step whose state is not
thread-safe differs here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from datathon_etl.datasets.mimic_cxr.synthetic import Sample, write_sample
from datathon_etl.generated.mimic_cxr.ingest import main as ingest
from tests.pipeline_outputs import (
    digest,
    duckdb_table,
    manifest_stages,
    quarantine_records,
    read_bytes,
    read_tree,
    tfrecords_by_folder,
)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    """12 small images in 2 tars, with one of each defect."""
    return write_sample(
        tmp_path_factory.mktemp("sample"), images=12, full_size=0, defects=True, images_per_tar=8
    )


PARTITIONS = {
    f"{split}/{view}" for split in ("train", "valid") for view in ("frontal", "lateral", "other")
}


def _run(sample: Sample, out: Path, *extra: str) -> int:
    root = sample.tars[0].parent
    return ingest(
        [
            *("--input_tars", f"{root}/*.tar", "--input_csv", f"{root}/*.csv.gz"),
            *("--output_dir", str(out), "--output_jpg_dir", str(out / "jpg")),
            *("--output_tfrecord_dir", str(out / "tfrecords")),
            *("--output_image_shape", "64", "64", "--max_bad_fraction", "0.5"),
            *extra,
        ]
    )


@pytest.mark.parametrize("mode", ["multi_processing", "multi_threading"])
def test_two_workers_write_the_same_outputs(sample: Sample, tmp_path: Path, mode: str) -> None:
    """Same exit code, JPGs, TFRecords, features.json, labels table, manifest and quarantine."""
    one, two = tmp_path / "one_worker", tmp_path / f"two_workers_{mode}"
    assert _run(sample, one) == 0
    assert _run(sample, two, f"--direct_running_mode={mode}", "--direct_num_workers=2") == 0

    jpgs = {path: digest(data) for path, data in read_tree(str(one / "jpg")).items()}
    assert len(jpgs) == len(sample.images)
    assert {path: digest(data) for path, data in read_tree(str(two / "jpg")).items()} == jpgs
    records = tfrecords_by_folder(str(one / "tfrecords"))
    assert sum(len(r) for r in records.values()) == len(sample.images)
    assert tfrecords_by_folder(str(two / "tfrecords")) == records
    features = "tfrecords/features.json"
    assert read_bytes(str(two / features)) == read_bytes(str(one / features))
    labels = duckdb_table(one / "tables.duckdb", "mimic_cxr_labels")
    assert labels.num_rows == len(sample.images)
    assert duckdb_table(two / "tables.duckdb", "mimic_cxr_labels").equals(labels)
    assert manifest_stages(str(two)) == manifest_stages(str(one))
    quarantine = quarantine_records(str(one), {})
    assert len(quarantine) == len(sample.defects) + 4  # some defects refuse two inputs
    assert quarantine_records(str(two), {}) == quarantine
    # Nothing else: no scratch files or DuckDB staging left behind by either run;
    # every split x view folder holds shards (an empty one a single empty shard).
    for out in (one, two):
        left = {p.relative_to(out).parts[0] for p in out.iterdir()}
        assert left == {
            "jpg",
            "tfrecords",
            "tables.duckdb",
            "_manifest.json",
            "_quarantine",
            "_card.html",
            "_leakage.json",
        }
        tfrecords = {p.relative_to(out / "tfrecords") for p in (out / "tfrecords").rglob("*")}
        assert {p for p in tfrecords if p.suffix != ".tfrecord"} == {
            Path("features.json"),
            *(Path(name) for name in PARTITIONS),
            *(Path(name.split("/")[0]) for name in PARTITIONS),
        }
        assert {p.parent.as_posix() for p in tfrecords if p.suffix == ".tfrecord"} == PARTITIONS
    empty = [name for name in PARTITIONS if not records.get(name)]
    assert empty, "the sample should leave a split x view folder without images"
