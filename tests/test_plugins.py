"""A data set declared in a package outside the repository is a command once installed.

The scratch package lives in ``tmp_path``: a declaration, its layout module,
and a ``pyproject.toml`` that registers the generated package under the
``datathon_etl.datasets`` entry-point group. `datathon-etl codegen` (the
console script, which does not put the current folder on ``sys.path``) runs
in the package's folder without ``PYTHONPATH``; the package is then
installed into a scratch virtual environment layered over this one (its
``.pth`` adds this environment's site-packages), so this environment is
left as it was. There, ``datathon-etl scratch_xray`` lists its commands and
``ingest`` runs end to end on three PNGs; entry points that take a built-in
command's name or name no package are told apart.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tests.scratch_package import generate, run_clean, scratch_venv, write_package

DECLARATION = '''
"""A scratch chest X-ray data set: ``p<patient>/i<image>.png`` and one label."""

from __future__ import annotations

import attrs

from datathon_etl.framework.schema import Dataset, column


@attrs.frozen
class Key:
    patient: int = column("Patient number.")
    image: int = column("Image number within the patient.")


@attrs.frozen
class Labels:
    finding: bool = column("Whether the finding is seen.", source="Finding")


DATASET = Dataset(
    name="scratch_xray",
    description="A scratch data set declared outside datathon-etl.",
    key=Key,
    labels=Labels,
    layout="scratch_xray.layout",
    patient="patient",
)
'''

LAYOUT = '''
"""Paths ``p<patient>/i<image>.png`` <-> keys; CSV rows ``path,Finding`` -> labels."""

from __future__ import annotations

import re
from collections.abc import Mapping

from datathon_etl.framework.schema import SourceRowError, parse_source_row
from scratch_xray.declaration import Key, Labels

PARTITIONS = ("all",)
_PATH = re.compile(r"p(?P<patient>\\d+)/i(?P<image>\\d+)\\.png")


def format_path(key: Key) -> str:
    return f"p{key.patient}/i{key.image}.png"


def parse_path(path: str) -> Key:
    match = _PATH.search(path)
    if match is None or not path.endswith(match.group(0)):
        raise ValueError(f"scratch_xray: {path}: not p<n>/i<n>.png")
    return Key(patient=int(match["patient"]), image=int(match["image"]))


def parse_label_row(row: Mapping[str, str | None], where: str) -> tuple[Key, Labels]:
    path = row.get("path")
    if not path:
        raise SourceRowError(f"scratch_xray: {where}", "path", "missing or blank")
    return parse_path(path), parse_source_row(Labels, row, f"scratch_xray: {where}: {path}")


def partition(key: Key) -> str:
    return "all"
'''

PYPROJECT = """
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "scratch-xray"
version = "0.1"

[project.entry-points."datathon_etl.datasets"]
scratch_xray = "scratch_xray.generated.scratch_xray"
untar = "scratch_xray.generated.scratch_xray"
gone = "scratch_xray.not_generated"

[tool.setuptools.packages.find]
include = ["scratch_xray*"]

[tool.setuptools.package-data]
"*" = ["*.json", "*.md"]
"""


def _scratch_package(root: Path) -> Path:
    modules = {"declaration": DECLARATION, "layout": LAYOUT}
    return write_package(root, "scratch_xray", modules, PYPROJECT)


def _sample(root: Path) -> tuple[Path, Path]:
    images = root / "images"
    rows = [("p1/i1.png", "1"), ("p1/i2.png", "0"), ("p2/i1.png", "true")]
    for number, (path, _) in enumerate(rows):
        (images / path).parent.mkdir(parents=True, exist_ok=True)
        pixels = np.full((40, 48), 60 * number, dtype=np.uint8)
        Image.fromarray(pixels, "L").save(images / path)
    labels = root / "labels.csv"
    with labels.open("w", newline="") as f:
        csv.writer(f).writerows([("path", "Finding"), *rows])
    return images, labels


def test_an_installed_package_s_dataset_is_a_command(tmp_path: Path) -> None:
    """Codegen in the package's folder, install, then ``datathon-etl scratch_xray ingest``."""
    project = _scratch_package(tmp_path)
    generate(project, "scratch_xray")
    dictionary = (project / "scratch_xray/generated/scratch_xray/DATA_DICTIONARY.md").read_text()
    assert 'scratch_xray = "scratch_xray.generated.scratch_xray"' in dictionary

    python = scratch_venv(tmp_path)
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
    install += ["--no-deps", "--no-build-isolation", "--no-index", str(project)]
    done = run_clean(install, tmp_path)
    assert done.returncode == 0, done.stderr
    cli = [str(python), "-m", "datathon_etl.framework.cli"]

    listed = run_clean([*cli, "--help"], tmp_path)
    assert "  scratch_xray ingest: " in listed.stdout, listed.stderr
    # A name a built-in command takes is not the plugin's; a package not there is named.
    assert "  ignored: untar = 'scratch_xray.generated.scratch_xray'" in listed.stdout
    gone = run_clean([*cli, "gone", "ingest"], tmp_path)
    assert gone.returncode == 2
    assert gone.stderr.startswith("datathon-etl: gone: cannot import 'scratch_xray.not_generated'")
    commands = run_clean([*cli, "scratch_xray", "--help"], tmp_path)
    assert commands.returncode == 0, commands.stderr
    assert [line.split()[0] for line in commands.stdout.splitlines() if line[:2] == "  "] == [
        "ingest",
        "infer",
        "evaluate",
    ]

    images, labels = _sample(tmp_path)
    out = tmp_path / "out"
    ingest = [*cli, "scratch_xray", "ingest", "--input_prefix", f"{images}/"]
    ingest += ["--input_csv", str(labels), "--output_tfrecord_dir", str(out / "tfrecords")]
    ingest += ["--output_dir", str(out), "--output_image_shape", "32", "32"]
    done = run_clean(ingest, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["pipeline"] == "scratch_xray ingest"
    assert manifest["stages"]["images"]["written"] == 3
    features = json.loads((out / "tfrecords" / "features.json").read_text())
    assert features["reader"] == "scratch_xray.generated.scratch_xray.features"
