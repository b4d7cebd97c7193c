"""Every entry point builds its Dataflow job; a template stages a package workers can import.

Nothing is submitted: ``--dry_run=True`` makes the ``DataflowRunner`` build
and check the job graph (pickling every step) and return, and
``--template_location`` writes the job as a template after staging what
workers need (the project's sdist built from ``--setup_file``) under
``--staging_location``, here on the emulated GCS. Inputs are small real
files on the fake GCS: the pre-flight checks list them and refuse local paths
under Dataflow.
"""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import keras
import pytest
from apache_beam.io.filesystems import FileSystems

from datathon_etl.datasets.chexpert.synthetic import FOLDER as CHEXPERT
from datathon_etl.datasets.chexpert.synthetic import write_sample as write_chexpert_sample
from datathon_etl.datasets.mimic_cxr.synthetic import Sample, write_sample
from datathon_etl.datasets.mimic_cxr_dicom.synthetic import write_sample as write_dicom_sample
from datathon_etl.datasets.mimic_cxr_jpg.synthetic import write_sample as write_jpg_sample
from datathon_etl.datasets.nih_cxr14.synthetic import write_sample as write_nih_sample
from datathon_etl.generated.mimic_cxr import rows
from datathon_etl.generated.mimic_cxr.ingest import main as ingest
from tests.emulators import BigQueryHandle, GcsHandle
from tests.entry_points import ENTRY_POINTS, argv_for
from tests.pipeline_outputs import read_bytes, read_tree, upload

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
PACKAGE_ROOTS = ("framework", "datasets", "codegen", "generated")
PACKAGE_DATA = (".py", ".json", ".md", ".j2")  # what setup.py ships from those folders


def _dataflow(bucket: str, project: str) -> list[str]:
    return [
        "--runner=DataflowRunner",
        f"--project={project}",
        "--region=us-central1",
        f"--temp_location={bucket}/tmp",
    ]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small real inputs of each kind, by their path under the inputs' prefix.

    A MIMIC-CXR sample (tars + CSVs), a MIMIC-CXR-JPG one under ``jpg/``, a
    MIMIC-CXR DICOM one (tree + CSVs) under ``dicom/``, NIH ChestX-ray14 and
    CheXpert ones under ``nih/`` and ``chexpert/``, a PNG, a tar, a .gz,
    a TFRecord and a Keras model.
    """
    root = tmp_path_factory.mktemp("inputs")
    sample: Sample = write_sample(root / "sample", images=2, full_size=0)
    jpg = write_jpg_sample(root / "jpg", images=2, defects=False)
    dicom = write_dicom_sample(root / "dicom", images=2)
    nih = write_nih_sample(root / "nih", images=2, side=32)
    chexpert = write_chexpert_sample(root / "chexpert", images=2, side=32)
    tar = root / "a.tar"
    with tarfile.open(tar, "w") as archive:
        info = tarfile.TarInfo("x/1.txt")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"one"))
    (root / "notes.txt.gz").write_bytes(gzip.compress(b"some notes\n"))
    (root / "data.tfrecord").write_bytes(b"")  # listed, not read, by a dry run
    keras.utils.set_random_seed(1)
    image = keras.Input((64, 64, 1))
    pooled = keras.layers.GlobalAveragePooling2D()(image)
    keras.Model(image, keras.layers.Dense(len(rows.TARGET_COLUMNS))(pooled)).save(
        root / "model.keras"
    )
    files = [
        *sample.tars,
        *sample.csvs,
        DATA / "images" / "00000001_000.png",
        tar,
        root / "notes.txt.gz",
        root / "data.tfrecord",
        root / "model.keras",
    ]
    found = {path.name: path for path in files}
    found.update({f"jpg/{path.name}": path for path in (*jpg.tars, *jpg.csvs.values())})
    found.update({f"dicom/{path}": dicom.root / path for path in dicom.images})
    found.update({f"dicom/{path.name}": path for path in dicom.csvs.values()})
    nih_files = [f"images/{name}" for name in nih.images]
    nih_files += ["Data_Entry_2017_v2020.csv", "train_val_list.txt", "test_list.txt"]
    found.update({f"nih/{name}": root / "nih" / name for name in nih_files})
    chexpert_files = [*chexpert, f"{CHEXPERT}/train.csv", f"{CHEXPERT}/valid.csv"]
    found.update({f"chexpert/{name}": root / "chexpert" / name for name in chexpert_files})
    return found


def _upload_inputs(inputs: dict[str, Path], bucket: str) -> str:
    for relative, path in inputs.items():
        upload(path, f"{bucket}/in/{relative}")
    return f"{bucket}/in"


@pytest.mark.parametrize("command", sorted(ENTRY_POINTS))
def test_every_entry_point_builds_its_dataflow_job(
    command: str,
    gcs: GcsHandle,
    bigquery: BigQueryHandle,
    inputs: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--dry_run builds and checks the job, exits 0, says it ran nothing and writes no manifest.

    An earlier run's manifest and quarantine stay as they were: a dry run
    prepares no output (``infer`` once deleted them).
    """
    bucket = gcs.bucket()
    inp = _upload_inputs(inputs, bucket)
    earlier = {
        "_manifest.json": b'{"pipeline": "an earlier run"}\n',
        "_quarantine/quarantine-00000-of-00001.jsonl": b'{"reason": "an earlier run"}\n',
    }
    for relative, data in earlier.items():
        with FileSystems.create(f"{bucket}/out/{relative}") as f:
            f.write(data)
    # Dataflow writes tables to BigQuery; images-to-tfrecord queries a CSV in DuckDB.
    table: str | None = f"{bigquery.project}:{bigquery.dataset()}.table"
    if command == "images-to-tfrecord":
        table = None
    argv = [*argv_for(command, inp, f"{bucket}/out", table), *_dataflow(bucket, bigquery.project)]

    assert ENTRY_POINTS[command]([*argv, "--dry_run=True"]) == 0

    stdout = capsys.readouterr().out
    assert "--dry_run: the Dataflow job was built and checked, not submitted" in stdout
    assert "no manifest" in stdout
    written = read_tree(f"{bucket}/out")
    assert {name: written.pop(name, None) for name in earlier} == earlier
    # Only the TFRecords' features.json, written beside the (absent) shards.
    assert set(written) <= {"tfrecords/features.json"}
    assert not read_tree(f"{bucket}/tmp")


def test_template_stages_a_package_with_everything_workers_import(
    gcs: GcsHandle,
    bigquery: BigQueryHandle,
    inputs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The MIMIC-CXR ingestion as a template: the staged sdist holds every module and data file.

    Workers ``pip install`` the staged ``workflow.tar.gz``: it must hold the
    framework, the dataset declarations, codegen with its templates and the
    generated modules with their JSON schemas; installed from it (not from
    this checkout), the generated entry point imports and finds its schema.
    """
    bucket = gcs.bucket()
    inp = _upload_inputs(inputs, bucket)
    table = f"{bigquery.project}:{bigquery.dataset()}.labels"
    template = f"{bucket}/templates/mimic_cxr_ingest.json"
    argv = [
        *argv_for("mimic_cxr ingest", inp, f"{bucket}/out", table),
        *_dataflow(bucket, bigquery.project),
    ]
    argv += ["--staging_location", f"{bucket}/staging", "--setup_file", str(ROOT / "setup.py")]

    assert ingest([*argv, "--template_location", template]) == 0

    assert f"template written to {template}" in capsys.readouterr().out
    job = json.loads(read_bytes(template))
    staged = read_tree(f"{bucket}/staging")
    (package,) = [path for path in staged if path.endswith("/workflow.tar.gz")]
    assert package.rpartition("/")[2] in json.dumps(job)  # the job points workers at it
    sdist = tmp_path / "workflow.tar.gz"
    sdist.write_bytes(staged[package])
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    expected = {
        path.relative_to(ROOT).as_posix()
        for folder in PACKAGE_ROOTS
        for path in (ROOT / folder).rglob("*")
        if path.suffix in PACKAGE_DATA and "__pycache__" not in path.parts
    }
    assert {
        "generated/mimic_cxr/labels_schema.json",
        "generated/mimic_cxr/predictions_schema.json",
        "codegen/templates/features.py.j2",
        "datasets/mimic_cxr/schema.py",
        "framework/preflight.py",
    } <= expected
    assert sorted(expected - names) == []
    _install_and_import(sdist, tmp_path)


def _install_and_import(sdist: Path, tmp_path: Path) -> None:
    """``pip install`` the sdist as a worker does, then import from it in a clean interpreter."""
    target = tmp_path / "site"
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"),
            *("--no-build-isolation", "--target", str(target), str(sdist)),
        ],
        check=True,
        capture_output=True,
    )
    # -I -S: no site-packages, so not this checkout's editable install; the
    # dependencies come from the test environment's folder, appended last.
    script = (
        "import sys; sys.path[:0] = [sys.argv[1]]; sys.path.append(sys.argv[2])\n"
        "import datathon_etl.generated.mimic_cxr.ingest as m\n"
        "import datathon_etl.codegen, importlib.resources as r\n"
        "print(m.__file__)\n"
        "print(len(m.SPEC.labels_bigquery_schema['fields']))\n"
        "print(r.files(datathon_etl.codegen).joinpath('templates/features.py.j2').is_file())\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script, str(target), sysconfig.get_path("purelib")],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    location, fields, template = result.stdout.split("\n")[:3]
    assert location.startswith(str(target))
    assert (fields, template) == ("20", "True")
