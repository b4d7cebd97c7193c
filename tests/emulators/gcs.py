"""fake-gcs-server: start it, create buckets, and the client-side batch patch.

Clients find the server through ``STORAGE_EMULATOR_HOST`` (with ``http://``);
Beam's GCS filesystem and ``google.cloud.storage.Client`` both honour it, so
pipelines need no extra option. Objects live as plain files under the
server's filesystem root (``<root>/<bucket>/<object>``), which is also where
bqemulator reads ``gs://`` load sources from.
"""

from __future__ import annotations

import itertools
import json
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import attrs
import pytest

from .process import ServerProcess, free_ports

__all__ = ["FakeGcsServer", "GcsHandle", "apply_content_id_patch", "use_fake_gcs"]


class FakeGcsServer:
    """A fake-gcs-server process on 127.0.0.1 with a filesystem backend.

    Attributes:
        root: The folder holding the buckets' objects.
    """

    def __init__(self, binary: Path, root: Path, log_path: Path) -> None:
        """Configures the server on a free port; `start` runs it.

        Args:
            binary: The fake-gcs-server executable.
            root: The filesystem backend's folder.
            log_path: The server's log file.
        """
        self.root = root
        (self._port,) = free_ports(1)
        self._process = ServerProcess(
            "fake-gcs-server",
            [
                str(binary),
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
                "-port",
                str(self._port),
                "-backend",
                "filesystem",
                "-filesystem-root",
                str(root),
                "-external-url",
                self.endpoint,
                "-log-level",
                "warn",
            ],
            log_path=log_path,
        )

    @property
    def endpoint(self) -> str:
        """The server's URL, the value for ``STORAGE_EMULATOR_HOST``."""
        return f"http://127.0.0.1:{self._port}"

    def start(self, *, timeout_s: float = 30.0) -> None:
        """Starts the server and waits until it lists buckets.

        Raises:
            StartError: It did not become ready.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        self._process.start()
        self._process.wait_ready(f"{self.endpoint}/storage/v1/b", timeout_s=timeout_s)

    def stop(self) -> None:
        """Stops the server (by pid)."""
        self._process.stop()

    def create_bucket(self, prefix: str = "bucket") -> str:
        """Creates a bucket with a unique name starting with ``prefix``.

        Returns:
            The bucket's ``gs://`` URL, without a trailing slash.
        """
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        request = urllib.request.Request(
            f"{self.endpoint}/storage/v1/b",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
        return f"gs://{name}"


def apply_content_id_patch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gives every part of a GCS batch request a ``Content-ID`` header, in this process.

    fake-gcs-server ignores batch parts without one, and google-cloud-storage
    sends none, so batched renames and deletes (what ``WriteToText`` and
    ``WriteToTFRecord`` do when they finalize) fail with ``Bad response: not
    multi-part``. Real GCS accepts either. Pipeline worker processes (e.g.
    ``--direct_running_mode=multi_processing``) do not get the patch.

    Args:
        monkeypatch: Undoes the patch when its scope ends.
    """
    from google.cloud.storage import batch

    original = batch.MIMEApplicationHTTP.__init__
    counter = itertools.count(1)

    def init_with_content_id(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self["Content-ID"] = f"<item-{next(counter)}>"

    monkeypatch.setattr(batch.MIMEApplicationHTTP, "__init__", init_with_content_id)


@attrs.frozen
class GcsHandle:
    """What the ``gcs`` fixture yields: the fake GCS server, with the test pointed at it.

    Attributes:
        endpoint: The server's URL (``STORAGE_EMULATOR_HOST``).
        root: The server's filesystem root: object ``gs://b/o`` is ``root/b/o``.
    """

    endpoint: str
    root: Path
    _server: FakeGcsServer = attrs.field(repr=False, alias="server")

    def bucket(self, prefix: str = "test") -> str:
        """Creates a new, empty bucket named ``<prefix>-<random>``.

        Returns:
            Its URL, e.g. ``gs://test-0123456789ab`` (no trailing slash).
        """
        return self._server.create_bucket(prefix)


def use_fake_gcs(monkeypatch: pytest.MonkeyPatch, server: FakeGcsServer) -> GcsHandle:
    """Points GCS clients in this process (and processes it starts) at ``server``.

    Sets ``STORAGE_EMULATOR_HOST`` and applies `apply_content_id_patch`; the
    credentials are `credentials.use_local_credentials`' job.

    Args:
        monkeypatch: Undoes both when its scope ends.
        server: A started server.

    Returns:
        The handle tests use.
    """
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.endpoint)
    apply_content_id_patch(monkeypatch)
    return GcsHandle(endpoint=server.endpoint, root=server.root, server=server)
