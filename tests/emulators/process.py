"""Background server processes: start, wait until ready, stop by pid.

Every emulator runs as a child process in its own session (process group),
with its output in a log file, so a failed start can say why and the
session's end can stop it and anything it spawned.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["ServerProcess", "StartError", "free_ports"]


class StartError(RuntimeError):
    """An emulator was installed but did not start or did not become ready."""


def free_ports(count: int) -> list[int]:
    """Distinct TCP ports on 127.0.0.1 that are free now (the caller binds them soon after)."""
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def _log_tail(path: Path, limit: int = 4_000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return text[-limit:] or "(empty log)"


class ServerProcess:
    """One server started in the background, stopped by its pid.

    Attributes:
        name: A short name for messages, e.g. ``fake-gcs-server``.
        log_path: Where the server's stdout and stderr go.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Configures the process; nothing starts until `start`.

        Args:
            name: A short name for messages.
            argv: The command line.
            log_path: The log file (created or truncated); the process runs
                in its folder, so stray files land there.
            env: The environment; the test process's when ``None``.
        """
        self.name = name
        self.log_path = log_path
        self._argv = list(argv)
        self._env = dict(env) if env is not None else None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The process id while started, else ``None``."""
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Starts the process in a new session; `stop` is also registered at exit."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                self._argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env,
                cwd=self.log_path.parent,
                start_new_session=True,
            )
        # Belt and braces: a session killed before fixture teardown still
        # leaves no server behind.
        atexit.register(self.stop)

    def wait_ready(self, url: str, *, timeout_s: float) -> None:
        """Polls ``url`` until it answers 2xx.

        Args:
            url: A plain-HTTP URL the server answers once ready.
            timeout_s: How long to wait.

        Raises:
            StartError: The process exited, or was not ready in time; the
                message ends with the tail of its log.
        """
        if self._process is None:
            raise StartError(f"{self.name}: not started")
        deadline = time.monotonic() + timeout_s
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                raise StartError(
                    f"{self.name}: exited with status {code} before it was ready; "
                    f"log {self.log_path}:\n{_log_tail(self.log_path)}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if 200 <= response.status < 300:
                        return
                    last_error = f"HTTP {response.status}"
            except (urllib.error.URLError, OSError) as error:
                last_error = str(error)
            time.sleep(0.05)
        raise StartError(
            f"{self.name}: not ready after {timeout_s:.0f} s ({url}: {last_error}); "
            f"log {self.log_path}:\n{_log_tail(self.log_path)}"
        )

    def stop(self, *, grace_s: float = 5.0) -> None:
        """Stops the process and its process group by pid (SIGTERM, then SIGKILL).

        Safe to call more than once and on a process that already exited.
        """
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=grace_s)
        atexit.unregister(self.stop)
