"""Real local emulators for the cloud paths: fake-gcs-server and bqemulator.

The fixtures in ``tests/conftest.py`` use this package:

* `install` puts each emulator into its own virtual environment under
  ``build/emulators/`` (once per checkout; the pins are in
  ``requirements-*.txt`` here). A machine that cannot install them skips
  the tests that need them; with ``CI`` set that is an error instead.
* `process` starts servers on free 127.0.0.1 ports, waits until they answer,
  and stops them by pid.
* `credentials` makes a service-account key and a local token server, so
  google-auth works with no cloud and no prompt.
* `gcs` and `bigquery` run the servers and point the clients at them:
  environment variables (inherited by processes a test starts) and three
  patches that exist only in the test process: a ``Content-ID`` on each GCS
  batch part (`gcs.apply_content_id_patch`), Beam's hard-coded BigQuery URL
  (`bigquery.patch_beam_base_url`), and query results downloaded over REST
  rather than the Storage Read API (`bigquery.download_results_over_rest`).

Limitation: pipeline worker processes (``--direct_running_mode=
multi_processing``) inherit the variables but not the patches: their GCS
batch renames and deletes fail against fake-gcs-server and their BigQuery
REST calls go to the real service. Run pipelines in-process
(``FnApiRunner``, or the ``DirectRunner``'s default) in these tests.
"""

from __future__ import annotations

from .bigquery import BigQueryEmulator, BigQueryHandle, use_bigquery_emulator
from .credentials import LocalCredentials, use_local_credentials
from .gcs import FakeGcsServer, GcsHandle, use_fake_gcs
from .install import (
    InstallError,
    in_ci,
    install_bqemulator,
    install_fake_gcs_server,
    install_or_skip,
)
from .process import StartError

__all__ = [
    "BigQueryEmulator",
    "BigQueryHandle",
    "FakeGcsServer",
    "GcsHandle",
    "InstallError",
    "LocalCredentials",
    "StartError",
    "in_ci",
    "install_bqemulator",
    "install_fake_gcs_server",
    "install_or_skip",
    "use_bigquery_emulator",
    "use_fake_gcs",
    "use_local_credentials",
]
