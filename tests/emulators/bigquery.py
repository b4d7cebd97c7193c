"""bqemulator: start it, point the clients at it, and two client-side patches.

google-cloud-bigquery clients (ours in `query_bigquery`, and the one Beam
uses for streaming inserts) follow ``BIGQUERY_EMULATOR_HOST`` for REST. Two
things do not, and are patched in the test process only:

* Beam's own REST client (table creation, load and copy jobs) has its URL
  hard-coded in ``BigqueryV2.BASE_URL`` (`patch_beam_base_url`).
* ``to_arrow()`` downloads results through the BigQuery Storage Read API
  (gRPC, real endpoint), from the query's anonymous destination table that
  the emulator does not keep (`download_results_over_rest` makes it page
  through the REST API instead, as without google-cloud-bigquery-storage).

Pipeline worker processes (e.g. ``--direct_running_mode=multi_processing``)
inherit the variable but not the patches, and would call the real BigQuery:
keep BigQuery pipelines in-process (``FnApiRunner``) in tests.

Load jobs read ``gs://`` sources from the fake GCS server's filesystem root
(``BQEMU_GCS_LOCAL_ROOT``), so ``FILE_LOADS`` works with a ``gs://`` temp
location on the fake GCS.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from .install import BigQueryInstall
from .process import ServerProcess, free_ports

if TYPE_CHECKING:
    from google.cloud import bigquery

__all__ = [
    "BEAM_BASE_URL_PATH",
    "BigQueryEmulator",
    "BigQueryHandle",
    "download_results_over_rest",
    "patch_beam_base_url",
    "use_bigquery_emulator",
]

BEAM_BASE_URL_PATH = "/bigquery/v2/"
"""The path Beam's REST client expects after the host."""


class BigQueryEmulator:
    """A bqemulator process on 127.0.0.1 (in-memory, REST and Storage Read gRPC).

    Attributes:
        project: The default project of requests that name none.
    """

    def __init__(
        self,
        install: BigQueryInstall,
        *,
        project: str,
        gcs_root: Path,
        log_path: Path,
    ) -> None:
        """Configures the emulator on free ports; `start` runs it.

        Args:
            install: The installed emulator.
            project: The default project.
            gcs_root: The fake GCS server's filesystem root, where load jobs
                find ``gs://bucket/object`` as ``<root>/bucket/object``.
            log_path: The emulator's log file.
        """
        self.project = project
        self._rest_port, self._grpc_port = free_ports(2)
        env = {
            **os.environ,
            "HOME": str(install.home),
            "BQEMU_GCS_LOCAL_ROOT": str(gcs_root),
        }
        self._process = ServerProcess(
            "bqemulator",
            [
                str(install.executable),
                "start",
                "--rest-host",
                "127.0.0.1",
                "--rest-port",
                str(self._rest_port),
                "--grpc-host",
                "127.0.0.1",
                "--grpc-port",
                str(self._grpc_port),
                "--project",
                project,
                "--log-level",
                "warning",
            ],
            log_path=log_path,
            env=env,
        )

    @property
    def endpoint(self) -> str:
        """The REST URL, the value for ``BIGQUERY_EMULATOR_HOST``."""
        return f"http://127.0.0.1:{self._rest_port}"

    @property
    def grpc_target(self) -> str:
        """``host:port`` of the Storage Read API (an insecure gRPC channel)."""
        return f"127.0.0.1:{self._grpc_port}"

    def start(self, *, timeout_s: float = 60.0) -> None:
        """Starts the emulator and waits for ``/readyz``.

        Raises:
            StartError: It did not become ready.
        """
        self._process.start()
        self._process.wait_ready(f"{self.endpoint}/readyz", timeout_s=timeout_s)

    def stop(self) -> None:
        """Stops the emulator (by pid)."""
        self._process.stop()


def patch_beam_base_url(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    """Points Beam's BigQuery REST client at ``endpoint``, in this process.

    Args:
        monkeypatch: Undoes the patch when its scope ends.
        endpoint: The emulator's REST URL, e.g. ``http://127.0.0.1:9050``.
    """
    from apache_beam.io.gcp.internal.clients.bigquery import bigquery_v2_client

    monkeypatch.setattr(
        bigquery_v2_client.BigqueryV2, "BASE_URL", endpoint.rstrip("/") + BEAM_BASE_URL_PATH
    )


def download_results_over_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes google-cloud-bigquery download results over REST, not the Storage Read API.

    ``to_arrow()`` on a query result reads the query's anonymous destination
    table through the BigQuery Storage Read API, which always dials the real
    gRPC endpoint; and bqemulator keeps no such table to read. With this
    patch the client behaves as when google-cloud-bigquery-storage is not
    installed: it pages through ``jobs.getQueryResults`` (or
    ``tabledata.list``), which the emulator serves.

    Args:
        monkeypatch: Undoes the patch when its scope ends.
    """
    from google.cloud import bigquery

    def no_storage_client(
        self: bigquery.Client, bqstorage_client: Any = None, *_: Any, **__: Any
    ) -> Any:
        return bqstorage_client  # None unless the caller brought its own

    monkeypatch.setattr(bigquery.Client, "_ensure_bqstorage_client", no_storage_client)


@attrs.frozen
class BigQueryHandle:
    """What the ``bigquery`` fixture yields: the emulator, with the test pointed at it.

    Attributes:
        project: The project to name in table specs and queries.
        endpoint: The REST URL (``BIGQUERY_EMULATOR_HOST``).
        grpc_target: ``host:port`` of the Storage Read API.
        client: A google-cloud-bigquery client for the emulator.
    """

    project: str
    endpoint: str
    grpc_target: str
    client: bigquery.Client

    def dataset(self, prefix: str = "test") -> str:
        """Creates a new, empty dataset named ``<prefix>_<random>``.

        Returns:
            The dataset id (without the project).
        """
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self.client.create_dataset(f"{self.project}.{name}")
        return name


def use_bigquery_emulator(
    monkeypatch: pytest.MonkeyPatch, emulator: BigQueryEmulator
) -> BigQueryHandle:
    """Points BigQuery clients in this process at ``emulator``.

    Sets ``BIGQUERY_EMULATOR_HOST`` (inherited by processes started later)
    and applies `patch_beam_base_url` and `download_results_over_rest` (this
    process only); the credentials are `credentials.use_local_credentials`'
    job.

    Args:
        monkeypatch: Undoes all three when its scope ends.
        emulator: A started emulator.

    Returns:
        The handle tests use, with a client made after the variables are set.
    """
    from google.cloud import bigquery

    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", emulator.endpoint)
    patch_beam_base_url(monkeypatch, emulator.endpoint)
    download_results_over_rest(monkeypatch)
    client = bigquery.Client(
        project=emulator.project, client_options={"api_endpoint": emulator.endpoint}
    )
    return BigQueryHandle(
        project=emulator.project,
        endpoint=emulator.endpoint,
        grpc_target=emulator.grpc_target,
        client=client,
    )
