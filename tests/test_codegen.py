"""Codegen: the committed files are current, and stale or stray files are caught."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from datathon_etl.codegen import check, render_all
from datathon_etl.codegen.__main__ import DEFAULT_OUT
from datathon_etl.codegen.__main__ import main as codegen_main
from datathon_etl.datasets import BUILTIN

TOY = """
from __future__ import annotations

import enum

import attrs

from datathon_etl.framework.schema import Dataset, column


class Side(enum.IntEnum):
    LEFT = 0
    RIGHT = 1


@attrs.frozen
class Key:
    case: int = column("Case number.")
    side: Side = column("Which hand.")


@attrs.frozen
class Labels:
    fracture: bool = column("Whether a fracture is seen.", source="Fracture")
    age: float | None = column("Bone age in years, if assessed.")


DATASET = Dataset(name="toy_hands", description="A toy dataset.", key=Key, labels=Labels)
"""


def test_committed_generated_files_are_current():
    """The same check as `datathon-etl codegen --check`, so pytest catches stale output."""
    result = check(render_all(BUILTIN), DEFAULT_OUT, owns_root=True)
    assert result.ok, result.report()


@pytest.fixture
def generated_copy(tmp_path: Path) -> Path:
    out = tmp_path / "generated"
    shutil.copytree(DEFAULT_OUT, out, ignore=shutil.ignore_patterns("__pycache__"))
    return out


def test_hand_edit_is_reported_as_a_diff(generated_copy: Path, capsys):
    """A hand-edited file fails the check with a unified diff naming it."""
    target = generated_copy / "mimic_cxr" / "labels_schema.json"
    target.write_text(target.read_text().replace('"INT64"', '"STRING"', 1))
    assert codegen_main(["--check", "--out", str(generated_copy), *BUILTIN]) == 1
    out = capsys.readouterr().out
    assert "mimic_cxr/labels_schema.json (on disk)" in out
    assert '-      "type": "STRING",' in out
    assert '+      "type": "INT64",' in out


def test_missing_and_orphaned_files_are_listed(generated_copy: Path):
    """A deleted file is missing; a stray file in a dataset folder is orphaned."""
    (generated_copy / "mimic_cxr" / "rows.py").unlink()
    (generated_copy / "mimic_cxr" / "old_schema.json").write_text("{}")
    (generated_copy / "removed_dataset").mkdir()
    (generated_copy / "removed_dataset" / "features.py").write_text("")
    result = check(render_all(BUILTIN), generated_copy, owns_root=True)
    assert result.missing == (Path("mimic_cxr/rows.py"),)
    assert set(result.orphaned) == {
        Path("mimic_cxr/old_schema.json"),
        Path("removed_dataset/features.py"),
    }
    assert not result.ok


def test_writing_makes_the_check_pass(generated_copy: Path):
    """Codegen repairs a stale tree, and writes nothing when it is current."""
    (generated_copy / "mimic_cxr" / "features.py").write_text("# edited\n")
    assert codegen_main(["--out", str(generated_copy), *BUILTIN]) == 0
    assert check(render_all(BUILTIN), generated_copy, owns_root=True).ok
    before = {p: p.stat().st_mtime_ns for p in generated_copy.rglob("*") if p.is_file()}
    assert codegen_main(["--out", str(generated_copy), *BUILTIN]) == 0
    assert before == {p: p.stat().st_mtime_ns for p in generated_copy.rglob("*") if p.is_file()}


def test_rendering_is_deterministic():
    """Two renders give identical bytes (no timestamps, stable order)."""
    assert render_all(BUILTIN) == render_all(BUILTIN)


def test_user_dataset_outside_the_repository(tmp_path: Path, monkeypatch):
    """A user's own package declares a dataset; codegen writes its artifacts to --out."""
    package = tmp_path / "myorg_datasets"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "hands.py").write_text(TOY)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "myorg_generated"
    assert codegen_main(["myorg_datasets.hands", "--out", str(out)]) == 0
    names = sorted(p.name for p in (out / "toy_hands").iterdir())
    assert names == [
        "DATA_DICTIONARY.md",
        "__init__.py",
        "arrow_schema.py",
        "dataset.json",
        "evaluate.py",
        "features.py",
        "infer.py",
        "labels_schema.json",
        "predictions_schema.json",
        "rows.py",
    ]
    dictionary = (out / "toy_hands" / "DATA_DICTIONARY.md").read_text()
    assert "| `side` | INT64 | BIGINT | no | Which hand. {0: left, 1: right} |" in dictionary
    assert "| `age` | FLOAT64 | DOUBLE | yes | Bone age in years, if assessed. |" in dictionary
    assert codegen_main(["myorg_datasets.hands", "--out", str(out), "--check"]) == 0


def test_errors_are_one_line(capsys):
    """A module without DATASET, or a user module without --out, is a clear error."""
    assert codegen_main(["json", "--out", "/nonexistent"]) == 2
    assert "json: exports no DATASET = Dataset(...)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        codegen_main(["myorg.datasets.x"])
    assert exit_.value.code == 2
    assert "--out is required" in capsys.readouterr().err


def test_the_readme_shows_a_generated_entry_point_as_shipped():
    """README's "Declaring a data set" quotes ``generated/mimic_cxr/infer.py`` whole."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    module = (DEFAULT_OUT / "mimic_cxr" / "infer.py").read_text()
    assert f"```python\n{module}```" in readme


@pytest.mark.parametrize(
    "dataset", sorted(p.parent.name for p in DEFAULT_OUT.glob("*/dataset.json"))
)
def test_generated_modules_hold_no_logic(dataset: str):
    """Each generated module is a docstring, imports and at most four binding statements.

    What differs between data sets is in ``dataset.json``; a module that
    grows logic (a def, a loop, a literal list of columns) fails here.
    """
    import ast

    for path in sorted((DEFAULT_OUT / dataset).glob("*.py")):
        body = ast.parse(path.read_text()).body
        statements = [
            s
            for s in body[1:]
            if not isinstance(s, ast.Import | ast.ImportFrom)
            and not (isinstance(s, ast.If) and ast.unparse(s.test) == "__name__ == '__main__'")
        ]
        assert len(statements) <= 4, path
        for statement in statements:
            assert isinstance(statement, ast.Assign | ast.AnnAssign), ast.unparse(statement)
            literals = [n for n in ast.walk(statement) if isinstance(n, ast.Constant)]
            assert not literals, ast.unparse(statement)


def test_the_declaration_loads_as_the_ir_says(tmp_path: Path, monkeypatch):
    """A user's ``dataset.json`` loads into the classes, columns and schemas its IR gives."""
    import json

    import pyarrow as pa

    from datathon_etl.codegen.generate import load_dataset_ir
    from datathon_etl.codegen.render import render_dataset
    from datathon_etl.framework.schema.package import DatasetPackage

    (tmp_path / "toy_hands_decl.py").write_text(TOY)
    monkeypatch.syspath_prepend(str(tmp_path))
    ir = load_dataset_ir("toy_hands_decl")
    files = render_dataset(ir, "myorg.generated.toy_hands")
    package = DatasetPackage.from_files("myorg.generated.toy_hands", files)
    module = __import__("toy_hands_decl")
    assert (package.features.key_type, package.features.labels_type) == (module.Key, module.Labels)
    assert package.rows.id_columns == ("case", "side", "path")
    assert package.rows.target_columns == ("fracture", "age")
    for table, schema in (
        (ir.labels_table, package.labels_schema),
        (ir.predictions_table, package.predictions_schema),
    ):
        assert schema.metadata == {b"table": table.name.encode()}
        assert [(f.name, str(f.type), f.nullable) for f in schema] == [
            (c.name, str(getattr(pa, c.type.arrow)()), c.nullable) for c in table.columns
        ]
    assert package.labels_schema.field("side").metadata[b"codes"] == b'{"0": "left", "1": "right"}'
    assert [s.name for s in package.features.specs] == [
        "jpg_bytes",
        "path",
        "case",
        "side",
        "fracture",
        "age",
    ]
    declared = json.loads(files["dataset.json"])
    declared["tables"]["labels"]["columns"][0]["type"] = "decimal"
    files["dataset.json"] = json.dumps(declared)
    with pytest.raises(ValueError, match=r"toy_hands_labels\.case: unknown type 'decimal'"):
        DatasetPackage.from_files("myorg.generated.toy_hands", files)
