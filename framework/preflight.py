"""Checks, before a pipeline is built, that the cloud resources it names can be used.

A job that names a missing bucket or BigQuery dataset, or runs with no
Google credentials, would otherwise fail minutes later, on a worker, with a
long traceback (or, for credentials, retry for half a minute first). Every
entry point calls `check_cloud_resources` while it validates its flags, with
the locations and tables the run reads and writes; each problem is a
`UsageError`, one line that says what to create or set, and the entry point
exits 2 before anything runs. A run with only local paths and DuckDB tables
contacts nothing here.

In order:

1. Rules that need no network: with ``--runner DataflowRunner``, ``--project``
   and a ``gs://`` ``--temp_location`` are required, every location must be on
   ``gs://`` and tables in BigQuery (workers see neither the launching
   machine's disk nor its DuckDB files); with any runner, a DuckDB table may
   not live on ``gs://`` (DuckDB files are local), and a BigQuery table
   written with ``FILE_LOADS`` needs a ``gs://`` ``--temp_location``.
2. Google credentials (``google.auth.default()``), when anything is on
   ``gs://`` or in BigQuery, or the runner is Dataflow.
3. Every bucket named exists (listing one object: the permission a job needs
   anyway, not ``storage.buckets.get``, which object roles lack).
4. Every BigQuery table's dataset exists.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions, TestOptions

from datathon_etl.framework.errors import UsageError
from datathon_etl.framework.runner import uses_dataflow
from datathon_etl.framework.tables.spec import BigQueryTable, DuckDBTable, TableSpec

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

__all__ = ["NO_CREDENTIALS", "bucket_of", "check_cloud_resources", "google_credentials"]

NO_CREDENTIALS = (
    "no Google credentials: run `gcloud auth application-default login` "
    "or set GOOGLE_APPLICATION_CREDENTIALS"
)
"""The start of the error when ``google.auth.default()`` finds nothing."""

_TIMEOUT_S = 30.0
_CREDENTIALS_VARIABLE = "GOOGLE_APPLICATION_CREDENTIALS"

Locations = Mapping[str, str | Sequence[str] | None]
"""Flag -> the location(s) it names (files, globs or prefixes); ``None`` is skipped."""
Tables = Mapping[str, TableSpec | None]
"""Flag -> the table it names; ``None`` is skipped."""


def bucket_of(uri: str) -> str | None:
    """The bucket of a ``gs://bucket/...`` URI, or ``None`` for anything else."""
    if not uri.startswith("gs://"):
        return None
    return uri[len("gs://") :].split("/", 1)[0] or None


def _flat(locations: Locations) -> list[tuple[str, str]]:
    flat = []
    for flag, value in locations.items():
        if value is None:
            continue
        for uri in [value] if isinstance(value, str) else value:
            flat.append((flag, uri))
    return flat


def google_credentials(needed_for: str) -> tuple[Credentials, str | None]:
    """Google's application default credentials and their project.

    Args:
        needed_for: What needs them, for the error message.

    Raises:
        UsageError: None are found (or the file named by
            ``GOOGLE_APPLICATION_CREDENTIALS`` is unusable).
    """
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    # google-auth logs a warning of its own when the metadata server does not
    # answer; the error below says it all, in one line.
    logger = logging.getLogger("google.auth._default")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        credentials, project = google.auth.default()
    except DefaultCredentialsError as e:
        named = os.environ.get(_CREDENTIALS_VARIABLE)
        detail = f"; {_CREDENTIALS_VARIABLE}={named}: {_one_line(e)}" if named else ""
        raise UsageError(f"{NO_CREDENTIALS} (needed for {needed_for}{detail})") from e
    finally:
        logger.setLevel(level)
    return credentials, project


def _dataflow_rules(options: PipelineOptions, locations: Locations, tables: Tables) -> None:
    cloud = options.view_as(GoogleCloudOptions)
    if not cloud.project:
        raise UsageError("--runner DataflowRunner needs --project (the project that runs the job)")
    temp: str | None = cloud.temp_location
    if not temp or bucket_of(temp) is None:
        raise UsageError(
            "--runner DataflowRunner needs --temp_location gs://BUCKET/tmp "
            f"(got {temp or 'none'}); create the bucket first"
        )
    for flag, uri in _flat(locations):
        if bucket_of(uri) is None:
            raise UsageError(
                f"{flag} {uri}: with --runner DataflowRunner every input and output must "
                "be on gs:// (workers cannot read or write this machine's files)"
            )
    for flag, table in tables.items():
        if isinstance(table, DuckDBTable):
            raise UsageError(
                f"{flag} {table}: with --runner DataflowRunner tables must be in BigQuery "
                "(project:dataset.table); a DuckDB file is local to one machine"
            )


def _check_duckdb_locations(tables: Tables) -> None:
    for flag, table in tables.items():
        if isinstance(table, DuckDBTable) and "://" in table.database:
            raise UsageError(
                f"{flag} {table}: a DuckDB table is a local file and cannot live on "
                f"{table.database.split('://', 1)[0]}://; give a BigQuery table "
                "(project:dataset.table) or a local path/to/file.duckdb:table"
            )


def _check_buckets(
    buckets: Mapping[str, str], credentials: Credentials, project: str | None
) -> None:
    from google.api_core import exceptions
    from google.cloud.storage import Client as StorageClient

    client = StorageClient(project=project, credentials=credentials)
    try:
        for bucket, named_by in sorted(buckets.items()):
            try:
                for _ in client.list_blobs(bucket, max_results=1, timeout=_TIMEOUT_S):
                    break
            except exceptions.NotFound as e:
                raise UsageError(
                    f"{named_by}: bucket gs://{bucket} does not exist; create it with "
                    f"`gcloud storage buckets create gs://{bucket} --location=REGION`"
                ) from e
            except exceptions.Forbidden as e:
                raise UsageError(
                    f"{named_by}: no access to gs://{bucket} for {_who(credentials)}; "
                    "grant it roles/storage.objectAdmin on the bucket"
                ) from e
            except exceptions.GoogleAPIError as e:
                raise UsageError(f"{named_by}: cannot check gs://{bucket}: {_one_line(e)}") from e
    finally:
        client.close()


def _check_datasets(
    tables: Iterable[tuple[str, BigQueryTable]], credentials: Credentials, project: str | None
) -> None:
    from google.api_core import exceptions
    from google.cloud import bigquery

    tables = list(tables)
    seen: set[tuple[str, str]] = set()
    client = bigquery.Client(project=project or tables[0][1].project, credentials=credentials)
    try:
        for flag, table in tables:
            if (table.project, table.dataset) in seen:
                continue
            seen.add((table.project, table.dataset))
            dataset = f"{table.project}:{table.dataset}"
            try:
                client.get_dataset(f"{table.project}.{table.dataset}", timeout=_TIMEOUT_S)
            except exceptions.NotFound as e:
                raise UsageError(
                    f"{flag} {table}: BigQuery dataset {dataset} does not exist; create it "
                    f"with `bq mk --dataset --location=LOCATION {dataset}`"
                ) from e
            except exceptions.Forbidden as e:
                raise UsageError(
                    f"{flag} {table}: no access to BigQuery dataset {dataset} for "
                    f"{_who(credentials)}; grant it roles/bigquery.dataEditor on the dataset"
                ) from e
            except exceptions.GoogleAPIError as e:
                raise UsageError(
                    f"{flag} {table}: cannot check BigQuery dataset {dataset}: {_one_line(e)}"
                ) from e
    finally:
        client.close()  # type: ignore[no-untyped-call]


def _who(credentials: Any) -> str:
    account = getattr(credentials, "service_account_email", None)
    return str(account) if account else "these credentials"


def _one_line(error: Exception) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())


def check_cloud_resources(
    options: PipelineOptions,
    *,
    locations: Locations | None = None,
    tables: Tables | None = None,
    file_loads: Sequence[str] = (),
    bigquery_query: bool = False,
) -> None:
    """Checks what a run is about to use (see the module docstring).

    Args:
        options: The run's options (runner, project, temp and staging
            locations).
        locations: Every file location the pipeline reads or writes, by the
            flag that names it (local paths are skipped, except that
            Dataflow refuses them).
        tables: Every table the run reads or writes, by flag.
        file_loads: The flags in ``tables`` whose table the run writes with
            ``FILE_LOADS``: a BigQuery one needs a gs:// ``--temp_location``
            for its files.
        bigquery_query: The run sends a query to BigQuery (whose tables the
            SQL names, so only credentials and a project are checked).

    Raises:
        UsageError: The first problem found, in one line.
    """
    locations = dict(locations or {})
    tables = dict(tables or {})
    cloud = options.view_as(GoogleCloudOptions)
    dataflow = uses_dataflow(options)
    if dataflow:
        _dataflow_rules(options, locations, tables)
    _check_duckdb_locations(tables)
    for flag in file_loads:
        table = tables.get(flag)
        if isinstance(table, BigQueryTable) and bucket_of(cloud.temp_location or "") is None:
            raise UsageError(
                f"{flag} {table}: --bigquery_write_method FILE_LOADS stages files in "
                f"--temp_location, which must be gs://BUCKET/tmp (got "
                f"{cloud.temp_location or 'none'}); or use STREAMING_INSERTS"
            )

    run_locations = {
        "--temp_location": cloud.temp_location,
        "--staging_location": cloud.staging_location,
        "--template_location": cloud.template_location,
    }
    buckets: dict[str, str] = {}
    for flag, uri in _flat({**locations, **run_locations}):
        bucket = bucket_of(uri)
        if bucket is not None:
            buckets.setdefault(bucket, f"{flag} {uri}")
    bigquery_tables = [(f, t) for f, t in tables.items() if isinstance(t, BigQueryTable)]
    needs: list[str] = [*buckets.values(), *(f"{f} {t}" for f, t in bigquery_tables)]
    if bigquery_query:
        needs.append("--query_backend bigquery")
    if dataflow and not options.view_as(TestOptions).dry_run:
        needs.append("--runner DataflowRunner")
    if not needs:
        return

    credentials, default_project = google_credentials(needs[0])
    project: str | None = cloud.project or default_project
    if bigquery_query and not project:
        raise UsageError(
            "--query_backend bigquery needs --project (the project that runs the query)"
        )
    if buckets:
        _check_buckets(buckets, credentials, project)
    if bigquery_tables:
        _check_datasets(bigquery_tables, credentials, project)
