"""Shared fixtures.

Cloud emulators (see ``tests/emulators``): request ``gcs`` and/or
``bigquery`` in a test. The servers start once per session, on first use;
each test that requests them gets the environment pointed at them, undone
after the test. Tests using them get the ``emulators`` marker automatically
(``pytest -m "not emulators"`` leaves them out).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.emulators import (
    BigQueryEmulator,
    BigQueryHandle,
    FakeGcsServer,
    GcsHandle,
    LocalCredentials,
    install_bqemulator,
    install_fake_gcs_server,
    install_or_skip,
    use_bigquery_emulator,
    use_fake_gcs,
    use_local_credentials,
)

EMULATOR_PROJECT = "test-project"
_EMULATOR_FIXTURES = frozenset({"gcs", "bigquery", "fake_gcs_server", "bigquery_emulator"})


# fake-gcs-server now and then answers a batch request (Beam's rename and
# delete) with a malformed body; seen about once in 16 runs. Only that error
# is retried, once: any other failure of an emulator test still fails.
_EMULATOR_FLAKES = ["not multi-part"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks every test that uses an emulator fixture with ``emulators``."""
    for item in items:
        if _EMULATOR_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.emulators)
            item.add_marker(pytest.mark.flaky(reruns=1, only_rerun=_EMULATOR_FLAKES))


@pytest.fixture(scope="session")
def emulator_credentials(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCredentials]:
    """A service-account file and the local token server behind it."""
    folder = tmp_path_factory.mktemp("credentials")
    with LocalCredentials.serve(folder, project=EMULATOR_PROJECT) as credentials:
        yield credentials


@pytest.fixture(scope="session")
def fake_gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeGcsServer]:
    """fake-gcs-server, installed if needed and started for the session."""
    binary = install_or_skip(install_fake_gcs_server)
    folder = tmp_path_factory.mktemp("fake-gcs")
    server = FakeGcsServer(binary, folder / "root", folder / "server.log")
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def bigquery_emulator(
    tmp_path_factory: pytest.TempPathFactory, fake_gcs_server: FakeGcsServer
) -> Iterator[BigQueryEmulator]:
    """bqemulator, installed if needed and started for the session; loads read the fake GCS."""
    install = install_or_skip(install_bqemulator)
    folder = tmp_path_factory.mktemp("bqemulator")
    emulator = BigQueryEmulator(
        install,
        project=EMULATOR_PROJECT,
        gcs_root=fake_gcs_server.root,
        log_path=folder / "server.log",
    )
    try:
        emulator.start()
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def gcs(
    fake_gcs_server: FakeGcsServer,
    emulator_credentials: LocalCredentials,
    monkeypatch: pytest.MonkeyPatch,
) -> GcsHandle:
    """The fake GCS, with this test's clients pointed at it; ``gcs.bucket()`` makes a bucket."""
    use_local_credentials(monkeypatch, emulator_credentials)
    return use_fake_gcs(monkeypatch, fake_gcs_server)


@pytest.fixture
def bigquery(
    bigquery_emulator: BigQueryEmulator, gcs: GcsHandle, monkeypatch: pytest.MonkeyPatch
) -> Iterator[BigQueryHandle]:
    """The BigQuery emulator (and the fake GCS), with this test's clients pointed at them.

    Has ``project``, ``client`` and ``dataset()``, which makes a dataset.
    """
    handle = use_bigquery_emulator(monkeypatch, bigquery_emulator)
    yield handle
    handle.client.close()  # type: ignore[no-untyped-call]
