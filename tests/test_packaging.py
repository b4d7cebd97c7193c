"""The wheel installs into a scratch environment under the one namespace."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("datathon_etl-*.whl")
    return built


def test_wheel_puts_everything_under_datathon_etl(wheel: Path):
    """Nothing named datasets, framework, codegen or generated at the top level."""
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"datathon_etl"}
    for expected in (
        "datathon_etl/generated/mimic_cxr/labels_schema.json",
        "datathon_etl/generated/mimic_cxr/predictions_schema.json",
        "datathon_etl/generated/mimic_cxr/features.py",
        "datathon_etl/codegen/templates/features.py.j2",
        "datathon_etl/datasets/mimic_cxr/schema.py",
        "datathon_etl/framework/schema/ir.py",
        "datathon_etl/framework/card/templates/card.html.j2",
    ):
        assert expected in names


def test_wheel_imports_generated_modules_in_a_scratch_environment(wheel: Path, tmp_path: Path):
    """Installed from the wheel (not the source tree), the generated modules import and work."""
    scratch = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(scratch)], check=True)
    python = scratch / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--quiet",
            "--target",
            site,
            str(wheel),
        ],
        check=True,
    )
    # Dependencies come from the test environment, appended after the scratch
    # site-packages; its .pth files (the editable install) are not processed.
    (Path(site) / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    script = (
        "import json, importlib.resources as r\n"
        "import datathon_etl.generated.mimic_cxr as g\n"
        "from datathon_etl.generated.mimic_cxr import features, rows, arrow_schema\n"
        "print(g.__file__)\n"
        "print(len(json.loads(r.files(g).joinpath('labels_schema.json').read_text())['fields']))\n"
        "print(len(features.SPECS), len(rows.LABEL_COLUMNS), len(arrow_schema.PREDICTIONS))\n"
    )
    result = subprocess.run(
        [python, "-I", "-c", script], check=True, capture_output=True, text=True, cwd=tmp_path
    )
    location, labels_fields, counts = result.stdout.split("\n")[:3]
    assert location.startswith(site)
    assert labels_fields == "20"
    assert counts == "21 14 20"
