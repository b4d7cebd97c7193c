"""Google credentials made locally: a service-account file and a token server.

Without default credentials Beam's GCS client retries for about 23 s per
process and its BigQuery client starts an interactive login. A
service-account JSON with a locally generated RSA key, whose ``token_uri``
is a tiny HTTP server on 127.0.0.1 that hands out a fixed access token,
satisfies google-auth everywhere (the emulators ignore the token).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["LocalCredentials", "TokenServer", "use_local_credentials", "write_service_account"]

_TOKEN = json.dumps({"access_token": "emulator-token", "expires_in": 3600, "token_type": "Bearer"})


class _TokenHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = _TOKEN.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keeps the test output quiet."""


class TokenServer:
    """An OAuth token endpoint on 127.0.0.1 that answers every POST with one token.

    It runs on a thread of the test process, so pipeline worker processes
    reach it too, for as long as the test session runs.
    """

    def __init__(self) -> None:
        """Binds a free port; `start` serves it."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenHandler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="emulator-token-server", daemon=True
        )

    @property
    def token_uri(self) -> str:
        """The URL to put in a service-account file's ``token_uri``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/token"

    def start(self) -> None:
        """Serves requests on a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stops serving and closes the socket."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()


def write_service_account(path: Path, *, token_uri: str, project: str) -> Path:
    """Writes a service-account key file with a freshly generated RSA key.

    Args:
        path: Where to write the JSON.
        token_uri: Where google-auth exchanges the signed assertion for a
            token (a `TokenServer`).
        project: The ``project_id`` in the file.

    Returns:
        ``path``.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode("ascii")
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "emulator-key",
        "private_key": pem,
        "client_email": f"emulator@{project}.iam.gserviceaccount.com",
        "client_id": "1",
        "auth_uri": token_uri,
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info, indent=2) + "\n")
    return path


@attrs.frozen
class LocalCredentials:
    """A service-account file whose tokens come from a running `TokenServer`.

    Attributes:
        path: The service-account JSON (``GOOGLE_APPLICATION_CREDENTIALS``).
        project: Its project (``GOOGLE_CLOUD_PROJECT``).
        token_uri: The token server's URL.
    """

    path: Path
    project: str
    token_uri: str

    @classmethod
    @contextmanager
    def serve(cls, folder: Path, *, project: str) -> Iterator[LocalCredentials]:
        """Starts a token server and writes a key file for it; stops the server after.

        Args:
            folder: Where to write ``service-account.json``.
            project: The project id.

        Yields:
            The credentials, valid until the context exits.
        """
        server = TokenServer()
        server.start()
        try:
            path = write_service_account(
                folder / "service-account.json", token_uri=server.token_uri, project=project
            )
            yield cls(path=path, project=project, token_uri=server.token_uri)
        finally:
            server.stop()


def use_local_credentials(monkeypatch: pytest.MonkeyPatch, credentials: LocalCredentials) -> None:
    """Makes Google clients in this process, and processes it starts, use ``credentials``.

    Sets ``GOOGLE_APPLICATION_CREDENTIALS``, ``GOOGLE_CLOUD_PROJECT`` and
    ``NO_GCE_CHECK=true`` (no probing of the metadata server), and empties
    Beam's process-wide credentials cache so Beam reads them afresh (and
    again after the test, when the variables are gone).

    Args:
        monkeypatch: Undoes all of it when its scope ends.
        credentials: From `LocalCredentials.serve`.
    """
    from apache_beam.internal.gcp import auth

    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(credentials.path))
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", credentials.project)
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    monkeypatch.setattr(auth._Credentials, "_credentials_init", False)
    monkeypatch.setattr(auth._Credentials, "_credentials", None)
