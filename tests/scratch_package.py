"""Scratch data-set packages outside the repository, for tests that declare one.

A package is written into a folder of its own (``project/<package>/``) and
run through the console scripts with ``PYTHONPATH`` unset, so it is found
the way a user's package is: from the current folder or once installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path

__all__ = ["generate", "run_clean", "scratch_venv", "write_package"]


def run_clean(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Runs a command without ``PYTHONPATH``; its output is captured as text."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)


def generate(project: Path, package: str) -> Path:
    """Runs ``datathon-etl codegen <package>.declaration`` in ``project``; returns its output.

    The generated packages go to ``<package>/generated/``, as a user's would.
    """
    script = Path(sys.executable).parent / "datathon-etl"
    out = f"{package}/generated"
    done = run_clean([str(script), "codegen", f"{package}.declaration", "--out", out], project)
    assert done.returncode == 0, done.stderr
    return project / out


def write_package(
    root: Path, package: str, modules: Mapping[str, str], pyproject: str | None = None
) -> Path:
    """Writes ``root/project/<package>/<module>.py`` for each module; returns the project."""
    project = root / "project"
    folder = project / package
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    for name, text in modules.items():
        (folder / f"{name}.py").write_text(text)
    if pyproject is not None:
        (project / "pyproject.toml").write_text(pyproject)
    return project


def scratch_venv(root: Path) -> Path:
    """A virtual environment that sees this one's packages, and installs into its own."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (site,) = (venv / "lib").glob("python*/site-packages")
    ours = sysconfig.get_paths()["purelib"]
    (site / "_over_datathon_etl.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return venv / "bin" / "python"
