"""Missing cloud resources and credentials: one line, exit 2, before any pipeline starts.

Against the emulators: a bucket that does not exist, a BigQuery dataset that
does not exist. Without any credentials (no ``GOOGLE_APPLICATION_CREDENTIALS``,
``NO_GCE_CHECK=true`` and an empty ``HOME``, so no gcloud login is found)
with no emulator at all: the check fails at once, rather than after Beam's
half-minute of retries. Each error says what to create or set; the run
writes nothing.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from datathon_etl.framework.preflight import NO_CREDENTIALS, check_cloud_resources
from datathon_etl.framework.tables import DuckDBTable
from tests.emulators import BigQueryHandle, GcsHandle
from tests.entry_points import ENTRY_POINTS, TABLE_FLAGS, argv_for
from tests.pipeline_outputs import read_tree

COMMANDS = sorted(ENTRY_POINTS)


def _one_line_error(
    command: str, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[str, float]:
    """Runs ``command``; asserts exit 2 and one stderr line; returns it and the seconds taken."""
    start = time.monotonic()
    code = ENTRY_POINTS[command](argv)
    seconds = time.monotonic() - start
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1, captured.err
    assert captured.out == ""  # nothing started (each pipeline prints a line when it does)
    return lines[0], seconds


@pytest.mark.parametrize("command", COMMANDS)
def test_missing_bucket(
    command: str, gcs: GcsHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An output bucket that does not exist is named, with the command that creates it."""
    inputs = gcs.bucket()
    missing = f"missing-{uuid.uuid4().hex[:12]}"
    argv = argv_for(command, f"{inputs}/in", f"gs://{missing}/out", f"{tmp_path}/t.duckdb:t")

    line, _ = _one_line_error(command, argv, capsys)

    assert line.startswith(f"{command}: ") or line.startswith(f"datathon-etl {command}: ")
    assert f"bucket gs://{missing} does not exist; create it with " in line
    assert f"`gcloud storage buckets create gs://{missing} --location=REGION`" in line
    assert read_tree(inputs) == {}


@pytest.mark.parametrize("command", sorted(TABLE_FLAGS))
def test_missing_bigquery_dataset(
    command: str,
    gcs: GcsHandle,
    bigquery: BigQueryHandle,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A table in a dataset that does not exist names the dataset and how to create it."""
    dataset = f"missing_{uuid.uuid4().hex[:12]}"
    table = f"{bigquery.project}:{dataset}.labels"
    argv = argv_for(command, str(tmp_path / "in"), str(tmp_path / "out"), table)
    argv += ["--temp_location", f"{gcs.bucket()}/tmp"]

    line, _ = _one_line_error(command, argv, capsys)

    assert f"{TABLE_FLAGS[command]} {table}: BigQuery dataset {bigquery.project}:{dataset}" in line
    assert "does not exist; create it with `bq mk --dataset --location=LOCATION " in line
    assert not (tmp_path / "out").exists()


@pytest.fixture
def no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No credentials anywhere google-auth looks, and no metadata server probe."""
    for name in (
        "GOOGLE_APPLICATION_CREDENTIALS",
        "CLOUDSDK_CONFIG",
        "GOOGLE_CLOUD_PROJECT",
        "STORAGE_EMULATOR_HOST",
        "BIGQUERY_EMULATOR_HOST",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))


def _assert_no_credentials(line: str, seconds: float) -> None:
    assert NO_CREDENTIALS == (
        "no Google credentials: run `gcloud auth application-default login` "
        "or set GOOGLE_APPLICATION_CREDENTIALS"
    )
    assert NO_CREDENTIALS in line
    assert seconds < 10  # not Beam's retries: told at once


@pytest.mark.usefixtures("no_credentials")
@pytest.mark.parametrize("command", COMMANDS)
def test_no_credentials_for_gcs(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A gs:// output with no credentials: the one line says how to log in."""
    out = f"gs://bucket-{uuid.uuid4().hex[:12]}/out"
    argv = argv_for(command, str(tmp_path / "in"), out, f"{tmp_path}/t.duckdb:t")
    line, seconds = _one_line_error(command, argv, capsys)
    _assert_no_credentials(line, seconds)
    assert "(needed for --output_" in line
    assert out in line


@pytest.mark.usefixtures("no_credentials")
@pytest.mark.parametrize("command", sorted(TABLE_FLAGS))
def test_no_credentials_for_bigquery(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A BigQuery table (all files local) with no credentials: the same line."""
    table = "test-project:labels.mimic_cxr"
    argv = argv_for(command, str(tmp_path / "in"), str(tmp_path / "out"), table)
    argv += ["--bigquery_write_method", "STREAMING_INSERTS"]  # FILE_LOADS needs gs:// temp
    line, seconds = _one_line_error(command, argv, capsys)
    _assert_no_credentials(line, seconds)
    assert f"(needed for {TABLE_FLAGS[command]} {table}" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.usefixtures("no_credentials")
def test_no_credentials_for_a_bigquery_query(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--query_backend bigquery with no credentials: the same line, before the query is sent."""
    argv = argv_for("images-to-tfrecord", str(tmp_path / "in"), str(tmp_path / "out"))
    argv += ["--query_backend", "bigquery", "--project", "test-project"]
    line, seconds = _one_line_error("images-to-tfrecord", argv, capsys)
    _assert_no_credentials(line, seconds)
    assert "(needed for --query_backend bigquery" in line


@pytest.mark.usefixtures("no_credentials")
def test_local_runs_need_no_credentials(tmp_path: Path) -> None:
    """Local paths and DuckDB tables contact nothing and need no credentials."""
    check_cloud_resources(
        PipelineOptions([]),
        locations={"--input_tars": [f"{tmp_path}/*.tar"], "--output_dir": str(tmp_path)},
        tables={"--output_table": DuckDBTable(f"{tmp_path}/tables.duckdb", "labels")},
    )


@pytest.mark.usefixtures("no_credentials")
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--runner", "DataflowRunner", "--project", "p-123456"],
            "--runner DataflowRunner needs --temp_location gs://BUCKET/tmp (got none)",
        ),
        (
            ["--runner", "DataflowRunner", "--temp_location", "gs://b/tmp"],
            "--runner DataflowRunner needs --project",
        ),
        (
            ["--runner", "DataflowRunner", "--project", "p-123456", "--temp_location", "gs://b/t"],
            "with --runner DataflowRunner every input and output must be on gs://",
        ),
        (
            ["--output_dir", "gs://b/out"],
            "--output_table gs://b/out/tables.duckdb:mimic_cxr_labels: a DuckDB table is a "
            "local file and cannot live on gs://",
        ),
        (
            ["--output_table", "p-123456:labels.t"],
            "--output_table p-123456:labels.t: --bigquery_write_method FILE_LOADS stages files "
            "in --temp_location, which must be gs://BUCKET/tmp (got none)",
        ),
    ],
)
def test_settings_that_cannot_work_are_refused_without_contacting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    """Settings that cannot work are told before credentials are even looked for.

    Dataflow without a project or a gs:// temp location, local paths on
    Dataflow, a DuckDB file on gs://, BigQuery file loads without a gs://
    temp location.
    """
    argv = argv_for("mimic_cxr ingest", str(tmp_path / "in"), str(tmp_path / "out"))
    line, _ = _one_line_error("mimic_cxr ingest", [*argv, *extra], capsys)
    assert message in line
