"""Evaluation: per-label AUROC in SQL, checked against a direct pairwise count."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from datathon_etl.codegen.render import render_dataset
from datathon_etl.framework.inference import (
    EVALUATION_SCHEMA,
    EvaluationSpec,
    LabelCodes,
    UncertainPolicy,
    evaluate,
    evaluation_sql,
)
from datathon_etl.framework.inference.evaluate import EvaluationJob
from datathon_etl.framework.schema import Dataset, column, read_dataset
from datathon_etl.framework.tables import DuckDBTable
from datathon_etl.generated.mimic_cxr import arrow_schema, rows
from datathon_etl.generated.mimic_cxr.evaluate import SPEC
from datathon_etl.generated.mimic_cxr.evaluate import main as evaluate_main

LABELS = rows.LABEL_COLUMNS
NOT_MENTIONED, NEGATIVE, UNCERTAIN, POSITIVE = 0, 1, 2, 3


def _ids(i: int) -> dict[str, Any]:
    return {
        "patient": 10_000_000 + i,
        "study": 1,
        "image": 1,
        "view": 0,
        "dataset": 1,
        "path": f"valid/p{10_000_000 + i}/s1/view1_frontal.jpg",
    }


def _write_tables(
    database: Path,
    scores: Sequence[dict[str, float]],
    codes: Sequence[dict[str, int]],
    *,
    extra_predictions: int = 0,
    extra_labels: int = 0,
) -> None:
    """Writes predictions and labels tables (the generated schemas) into ``database``."""
    predictions = [{**_ids(i), **s} for i, s in enumerate(scores)]
    labels = [{**_ids(i), **c} for i, c in enumerate(codes)]
    # Rows on one side only: they must not count.
    zero_scores = dict.fromkeys(LABELS, 0.0)
    predictions += [{**_ids(-1 - i), **zero_scores} for i in range(extra_predictions)]
    positive_codes = dict.fromkeys(LABELS, POSITIVE)
    labels += [{**_ids(10_000 + i), **positive_codes} for i in range(extra_labels)]
    with duckdb.connect(str(database)) as con:
        for name, table in (
            ("mimic_cxr_predictions", pa.Table.from_pylist(predictions, arrow_schema.PREDICTIONS)),
            ("mimic_cxr_labels", pa.Table.from_pylist(labels, arrow_schema.LABELS)),
        ):
            con.register("source", table)
            con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM source")
            con.unregister("source")


def _outcome(code: int, policy: UncertainPolicy) -> int | None:
    """The documented policy, written out independently of the SQL."""
    if code == POSITIVE:
        return 1
    if code in (NEGATIVE, NOT_MENTIONED):
        return 0
    return {UncertainPolicy.IGNORE: None, UncertainPolicy.NEGATIVE: 0, UncertainPolicy.POSITIVE: 1}[
        policy
    ]


def _pairwise(pairs: Sequence[tuple[float, int | None]]) -> dict[str, Any]:
    """AUROC by counting every (positive, negative) pair: 1 if ordered, 1/2 if tied."""
    positives = [s for s, o in pairs if o == 1]
    negatives = [s for s, o in pairs if o == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in positives for n in negatives)
    scored = len(positives) + len(negatives)
    return {
        "auroc": wins / (len(positives) * len(negatives)) if positives and negatives else None,
        "prevalence": len(positives) / scored if scored else None,
        "positives": len(positives),
        "negatives": len(negatives),
        "excluded": len(pairs) - scored,
        "images": len(pairs),
    }


def _job(database: Path, policy: UncertainPolicy = UncertainPolicy.IGNORE) -> EvaluationJob:
    return EvaluationJob(
        predictions=DuckDBTable(str(database), "mimic_cxr_predictions"),
        labels=DuckDBTable(str(database), "mimic_cxr_labels"),
        policy=policy,
    )


def _by_label(table: pa.Table) -> dict[str, dict[str, Any]]:
    return {row.pop("label"): row for row in table.to_pylist()}


def _assert_close(found: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        if isinstance(value, float):
            assert found[key] == pytest.approx(value, abs=1e-12), key
        else:
            assert found[key] == value, key


# Edema: six images; 0.4 is tied between a positive, a negative and an uncertain.
EDEMA_SCORES = [0.1, 0.4, 0.35, 0.8, 0.4, 0.4]
EDEMA_CODES = [NEGATIVE, POSITIVE, NOT_MENTIONED, POSITIVE, NEGATIVE, UNCERTAIN]


def _known_case(database: Path) -> None:
    scores = [{**dict.fromkeys(LABELS, 0.5), "edema": s} for s in EDEMA_SCORES]
    codes = [{**dict.fromkeys(LABELS, NOT_MENTIONED), "edema": c} for c in EDEMA_CODES]
    _write_tables(database, scores, codes, extra_predictions=2, extra_labels=3)


@pytest.mark.parametrize(
    ("policy", "auroc", "prevalence", "positives", "negatives", "excluded"),
    [
        (UncertainPolicy.IGNORE, 11 / 12, 2 / 5, 2, 3, 1),
        (UncertainPolicy.NEGATIVE, 7 / 8, 2 / 6, 2, 4, 0),
        (UncertainPolicy.POSITIVE, 8 / 9, 3 / 6, 3, 3, 0),
    ],
)
def test_known_answer_with_ties(
    tmp_path, policy, auroc, prevalence, positives, negatives, excluded
):
    """Hand-computed AUROCs (ties count 1/2) for each uncertainty policy; one-sided rows ignored."""
    database = tmp_path / "t.duckdb"
    _known_case(database)
    result = evaluate(SPEC, _job(database, policy))
    assert (result.predictions, result.labels, result.matched) == (8, 9, 6)
    edema = _by_label(result.table)["edema"]
    expected = {
        "auroc": auroc,
        "prevalence": prevalence,
        "positives": positives,
        "negatives": negatives,
        "excluded": excluded,
        "images": 6,
    }
    _assert_close(edema, expected)
    pairs = [(s, _outcome(c, policy)) for s, c in zip(EDEMA_SCORES, EDEMA_CODES, strict=True)]
    _assert_close(edema, _pairwise(pairs))


def test_a_label_without_positives_has_no_auroc(tmp_path):
    """All not mentioned: AUROC is NULL, prevalence 0; labels come back in model output order."""
    database = tmp_path / "t.duckdb"
    _known_case(database)
    result = evaluate(SPEC, _job(database))
    assert result.table.column("label").to_pylist() == list(LABELS)
    assert result.table.schema == EVALUATION_SCHEMA
    cardiomegaly = _by_label(result.table)["cardiomegaly"]
    assert cardiomegaly["auroc"] is None
    assert cardiomegaly["prevalence"] == 0.0
    assert (cardiomegaly["positives"], cardiomegaly["negatives"]) == (0, 6)


@pytest.mark.parametrize("policy", list(UncertainPolicy))
def test_random_scores_with_many_ties_match_the_pairwise_count(tmp_path, policy):
    """300 images, scores on a coarse grid (many ties), random codes: every label matches."""
    rng = random.Random(7)
    scores = [{name: rng.randint(0, 12) / 4 - 1.5 for name in LABELS} for _ in range(300)]
    codes = [{name: rng.choice([0, 0, 1, 2, 3]) for name in LABELS} for _ in range(300)]
    database = tmp_path / "t.duckdb"
    _write_tables(database, scores, codes)
    found = _by_label(evaluate(SPEC, _job(database, policy)).table)
    for name in LABELS:
        pairs = [(s[name], _outcome(c[name], policy)) for s, c in zip(scores, codes, strict=True)]
        _assert_close(found[name], _pairwise(pairs))


def test_the_sql_is_portable():
    """One text for both backends: backtick identifiers, partitions by the label index only."""
    sql = evaluation_sql(SPEC, "`p`.`d`.`t`", "`p`.`d`.`l`", UncertainPolicy.IGNORE)
    assert '"' not in sql
    assert "FILTER" not in sql
    assert "::" not in sql
    partitions = re.findall(r"PARTITION BY ([^)]*?)(?: ORDER BY [^)]*)?\)", sql)
    assert len(partitions) == 3
    assert set(partitions) == {"label_index"}
    assert re.search(r"GROUP BY (?!label_index)", sql) is None


def test_command_prints_and_writes_the_leaderboard(tmp_path, capsys):
    """The generated entry point: labels and output default beside the predictions, in DuckDB."""
    database = tmp_path / "t.duckdb"
    _known_case(database)
    argv = ["--predictions_table", f"{database}:mimic_cxr_predictions", "--uncertain", "positive"]
    assert evaluate_main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"^edema\s+0\.889\s+0\.500\s+3\s+3\s+0$", out, re.MULTILINE), out
    assert "mean AUROC 0.889 over 1 of 14 labels" in out
    with duckdb.connect(str(database), read_only=True) as con:
        written = con.sql("SELECT * FROM mimic_cxr_evaluation").to_arrow_table()
        comment = con.execute(
            "SELECT comment FROM duckdb_columns() "
            "WHERE table_name = 'mimic_cxr_evaluation' AND column_name = 'auroc'"
        ).fetchone()
    expected = evaluate(SPEC, _job(database, UncertainPolicy.POSITIVE)).table
    assert written.to_pylist() == expected.to_pylist()
    assert comment is not None
    assert "ROC" in comment[0]


def test_command_errors(tmp_path, capsys):
    """Missing flag, file, table or mixed backends: one line, exit 2, nothing written."""
    database = tmp_path / "t.duckdb"
    _known_case(database)
    assert evaluate_main([]) == 2
    assert "--predictions_table is required" in capsys.readouterr().err
    mixed = [
        "--predictions_table",
        f"{database}:mimic_cxr_predictions",
        "--labels_table",
        "my-project:labels.mimic_cxr",
    ]
    assert evaluate_main(mixed) == 2
    assert "all be in DuckDB or all in BigQuery" in capsys.readouterr().err
    assert evaluate_main(["--predictions_table", f"{tmp_path / 'none.duckdb'}:team_a"]) == 2
    assert "none.duckdb:team_a: no such DuckDB file" in capsys.readouterr().err
    missing = ["--predictions_table", f"{database}:team_a", "--output_table", "team_a_scores"]
    assert evaluate_main(missing) == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1
    assert f"--predictions_table {database}:team_a: no such table" in stderr
    missing_labels = ["--predictions_table", f"{database}:mimic_cxr_predictions"]
    assert evaluate_main([*missing_labels, "--labels_table", "nope"]) == 2
    assert f"--labels_table {database}:nope: no such table" in capsys.readouterr().err
    with duckdb.connect(str(database), read_only=True) as con:
        tables = {row[0] for row in con.sql("SHOW TABLES").fetchall()}
    assert "team_a_scores" not in tables


def test_codegen_rule_for_bool_and_unscored_labels():
    """A bool label is scored (true positive); a float label is listed as not evaluated."""
    import attrs

    @attrs.frozen
    class Key:
        case: int = column("Case number.")

    @attrs.frozen
    class Labels:
        fracture: bool = column("Whether a fracture is seen.")
        age: float | None = column("Bone age in years.")

    ir = read_dataset(
        Dataset(name="toy_hands", description="A toy.", key=Key, labels=Labels), "tests.toy"
    )
    source = render_dataset(ir)["evaluate.py"]
    namespace: dict[str, Any] = {}
    exec(compile(source, "evaluate.py", "exec"), namespace)
    spec: EvaluationSpec = namespace["SPEC"]
    assert spec.labels == (LabelCodes("fracture", positive=(True,), negative=(False,)),)
    assert "Not evaluated" in source
    assert "`age`" in source
    assert spec.labels[0].outcome(True, UncertainPolicy.IGNORE) == 1
    assert "IN (TRUE) THEN 1 WHEN label_0 IN (FALSE) THEN 0" in evaluation_sql(spec, "p", "l")
