"""Evaluation: AUROC and its bootstrap checked by direct counts; hostile submissions refused."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from datathon_etl.codegen.render import render_dataset
from datathon_etl.framework.evaluate import (
    LEADERBOARD_SCHEMA,
    EvaluationSplit,
    LabelCodes,
    Settings,
    UncertainPolicy,
    score_submission,
    weighted_auroc,
)
from datathon_etl.framework.evaluate.policy import label_codes
from datathon_etl.framework.evaluate.sql import outcome_sql
from datathon_etl.framework.schema import Dataset, column, read_dataset
from datathon_etl.generated.mimic_cxr import arrow_schema, rows
from datathon_etl.generated.mimic_cxr.evaluate import SPEC
from datathon_etl.generated.mimic_cxr.evaluate import main as evaluate_main

LABELS = rows.LABEL_COLUMNS
NOT_MENTIONED, NEGATIVE, UNCERTAIN, POSITIVE = 0, 1, 2, 3
TRAIN, VALID = 0, 1
TABLE = "mimic_cxr_predictions"
GENERATED = Path(__file__).resolve().parents[1] / "generated" / "mimic_cxr"


def _ids(i: int, split: int = VALID, patient: int | None = None) -> dict[str, Any]:
    patient = 10_000_000 + (i if patient is None else patient)
    name = "valid" if split == VALID else "train"
    return {
        "patient": patient,
        "study": 10 + i,
        "image": 1,
        "view": 0,
        "dataset": split,
        "path": f"{name}/p{patient}/s{10 + i}/view1_frontal.jpg",
    }


def _write(database: Path, name: str, table_rows: list[dict[str, Any]], schema: pa.Schema) -> None:
    with duckdb.connect(str(database)) as con:
        con.register("source", pa.Table.from_pylist(table_rows, schema))
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM source")
        con.unregister("source")


def _pairwise(pairs: Sequence[tuple[float, int | None]]) -> dict[str, Any]:
    """AUROC by counting every (positive, negative) pair: 1 if ordered, 1/2 if tied."""
    positives = [s for s, o in pairs if o == 1]
    negatives = [s for s, o in pairs if o == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in positives for n in negatives)
    return {
        "auroc": wins / (len(positives) * len(negatives)) if positives and negatives else None,
        "positives": len(positives),
        "negatives": len(negatives),
        "excluded": len(pairs) - len(positives) - len(negatives),
    }


def _outcome(code: int, policy: UncertainPolicy) -> int | None:
    """The documented policy, written out independently of the SQL."""
    if code == POSITIVE:
        return 1
    if code in (NEGATIVE, NOT_MENTIONED):
        return 0
    return {UncertainPolicy.IGNORE: None, UncertainPolicy.NEGATIVE: 0, UncertainPolicy.POSITIVE: 1}[
        policy
    ]


def _score(
    scores: Sequence[dict[str, float]],
    codes: Sequence[dict[str, int]],
    settings: Settings,
    patients: Sequence[int] | None = None,
) -> Any:
    """Scores one team in memory: image i has ``scores[i]`` and ``codes[i]``."""
    ids = [_ids(i, patient=None if patients is None else patients[i]) for i in range(len(codes))]
    labels = pa.Table.from_pylist(
        [{**i, **c} for i, c in zip(ids, codes, strict=True)], arrow_schema.LABELS
    )
    predictions = pa.Table.from_pylist(
        [{**i, **s} for i, s in zip(ids, scores, strict=True)], arrow_schema.PREDICTIONS
    )
    split = EvaluationSplit.prepare(SPEC, labels, settings)
    return score_submission(SPEC, "team", "memory", predictions, split, settings)


def _by_label(result: Any) -> dict[str, Any]:
    return {s.label: s for s in result.labels}


# Edema: six images; 0.4 is tied between a positive, a negative and an uncertain.
EDEMA_SCORES = [0.1, 0.4, 0.35, 0.8, 0.4, 0.4]
EDEMA_CODES = [NEGATIVE, POSITIVE, NOT_MENTIONED, POSITIVE, NEGATIVE, UNCERTAIN]


@pytest.mark.parametrize(
    ("policy", "auroc", "positives", "negatives", "excluded"),
    [
        (UncertainPolicy.IGNORE, 11 / 12, 2, 3, 1),
        (UncertainPolicy.NEGATIVE, 7 / 8, 2, 4, 0),
        (UncertainPolicy.POSITIVE, 8 / 9, 3, 3, 0),
    ],
)
def test_known_answer_with_ties(policy, auroc, positives, negatives, excluded):
    """Hand-computed AUROCs (ties count 1/2) for each uncertainty policy."""
    scores = [{**dict.fromkeys(LABELS, 0.5), "edema": s} for s in EDEMA_SCORES]
    codes = [{**dict.fromkeys(LABELS, NOT_MENTIONED), "edema": c} for c in EDEMA_CODES]
    settings = Settings(policy=policy, split="valid", samples=0, min_positives=1)
    result = _score(scores, codes, settings)
    edema = _by_label(result)["edema"]
    assert edema.auroc == pytest.approx(auroc, abs=1e-12)
    assert (edema.positives, edema.negatives, edema.excluded) == (positives, negatives, excluded)
    pairs = [(s, _outcome(c, policy)) for s, c in zip(EDEMA_SCORES, EDEMA_CODES, strict=True)]
    assert edema.auroc == pytest.approx(_pairwise(pairs)["auroc"], abs=1e-12)
    cardiomegaly = _by_label(result)["cardiomegaly"]
    assert cardiomegaly.auroc is None  # no positive
    assert [s.label for s in result.labels] == list(LABELS)


@pytest.mark.parametrize("policy", list(UncertainPolicy))
def test_random_scores_with_many_ties_match_the_pairwise_count(policy):
    """300 images, scores on a coarse grid (many ties), random codes: every label matches."""
    rng = random.Random(7)
    scores = [{name: rng.randint(0, 12) / 4 - 1.5 for name in LABELS} for _ in range(300)]
    codes = [{name: rng.choice([0, 0, 1, 2, 3]) for name in LABELS} for _ in range(300)]
    result = _score(scores, codes, Settings(policy=policy, split="valid", samples=0))
    found = _by_label(result)
    for name in LABELS:
        pairs = [(s[name], _outcome(c[name], policy)) for s, c in zip(scores, codes, strict=True)]
        expected = _pairwise(pairs)
        assert found[name].auroc == pytest.approx(expected["auroc"], abs=1e-12), name
        assert (found[name].positives, found[name].negatives, found[name].excluded) == (
            expected["positives"],
            expected["negatives"],
            expected["excluded"],
        )


def test_weights_count_as_repeated_images():
    """An image of weight k scores as k copies of it (what a bootstrap draw does)."""
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 5, 40).astype(np.float64)
    positive = rng.random(40) < 0.4
    weights = rng.integers(0, 4, (5, 40))
    found = weighted_auroc(scores, positive, weights)
    for row, value in zip(weights, found, strict=True):
        pairs = [
            (float(s), int(y))
            for s, y, w in zip(scores, positive, row, strict=True)
            for _ in range(w)
        ]
        assert value == pytest.approx(_pairwise(pairs)["auroc"], abs=1e-12)


def test_bootstrap_resamples_patients_with_the_seed():
    """Intervals equal a direct re-count over patients drawn from the same seeded generator."""
    rng = random.Random(11)
    patients = [i // 3 for i in range(36)]  # 12 patients, 3 images each
    codes = [
        {**dict.fromkeys(LABELS, NOT_MENTIONED), "edema": rng.choice([1, 3])} for _ in patients
    ]
    scores = [
        {**dict.fromkeys(LABELS, 0.0), "edema": (c["edema"] == POSITIVE) + rng.random()}
        for c in codes
    ]
    settings = Settings(split="valid", samples=50, seed=5, min_positives=1)
    edema = _by_label(_score(scores, codes, settings, patients))["edema"]

    names = sorted({str(10_000_000 + p) for p in patients})  # the split's patients, sorted
    draws = np.random.default_rng(5).multinomial(len(names), [1 / len(names)] * len(names), 50)
    replicates = []
    for counts in draws:
        times = {name: int(n) for name, n in zip(names, counts, strict=True)}
        pairs = [
            (s["edema"], _outcome(c["edema"], settings.policy))
            for p, s, c in zip(patients, scores, codes, strict=True)
            for _ in range(times[str(10_000_000 + p)])
        ]
        value = _pairwise(pairs)["auroc"]
        if value is not None:
            replicates.append(value)
    low, high = np.percentile(replicates, [2.5, 97.5])
    assert (edema.low, edema.high) == (pytest.approx(low), pytest.approx(high))
    assert edema.low <= edema.auroc <= edema.high


def test_outcome_sql_and_python_policy_agree():
    """The SQL policy and `LabelCodes.outcome` give the same outcome for every code."""
    codes = SPEC.labels[0]
    with duckdb.connect() as con:
        for policy in UncertainPolicy:
            for value in (NOT_MENTIONED, NEGATIVE, UNCERTAIN, POSITIVE, None):
                sql = outcome_sql(codes, "v", policy)
                query = f"SELECT {sql} FROM (SELECT CAST(? AS INTEGER) AS v)"
                ((found,),) = con.execute(query, [value]).fetchall()
                assert found == codes.outcome(value, policy), (policy, value)


# The organiser's labels: a valid split of 27 images over 9 patients, a train split of 20.
VALID_IMAGES = 27


def _labels_rows() -> list[dict[str, Any]]:
    rng = random.Random(1)
    labelled = []
    for i in range(VALID_IMAGES + 20):
        split = VALID if i < VALID_IMAGES else TRAIN
        codes = {name: rng.choice([0, 1, 1, 3]) for name in LABELS}
        codes["fracture"] = POSITIVE if i in (0, 1) else NEGATIVE  # 2 positives: not ranked
        codes["edema"] = POSITIVE if i % 2 else NEGATIVE
        labelled.append({**_ids(i, split, patient=i // 3), **codes})
    return labelled


def _honest(labelled: list[dict[str, Any]], noise: float, seed: int) -> list[dict[str, Any]]:
    """A fair team's rows for the valid split: the truth blurred by ``noise``."""
    rng = random.Random(seed)
    return [
        {
            **{k: row[k] for k in ("patient", "study", "image", "view", "dataset", "path")},
            **{name: float(row[name] == POSITIVE) + noise * rng.random() for name in LABELS},
        }
        for row in labelled
        if row["dataset"] == VALID
    ]


@pytest.fixture
def organiser(tmp_path: Path) -> Path:
    """The organiser's labels database."""
    database = tmp_path / "organiser" / "labels.duckdb"
    database.parent.mkdir()
    _write(database, "mimic_cxr_labels", _labels_rows(), arrow_schema.LABELS)
    return database


def _team_db(path: Path, *statements: str, attach: Path | None = None) -> Path:
    with duckdb.connect(str(path)) as con:
        if attach:
            con.execute(f"ATTACH '{attach}' AS organiser (READ_ONLY)")
        for statement in statements:
            con.execute(statement)
    return path


def _run(organiser: Path, *argv: str) -> int:
    base = ["--labels_db", str(organiser), "--split", "valid", "--bootstrap_samples", "20"]
    return evaluate_main([*base, *argv])


_VIEW_OF_LABELS = (
    f"CREATE VIEW {TABLE} AS SELECT patient, study, image, view, dataset, path, "
    + ", ".join(f"CAST({n} = 3 AS DOUBLE) AS {n}" for n in LABELS)
    + " FROM organiser.mimic_cxr_labels"
)
_VIEW_READING_FILES = (
    f"CREATE VIEW {TABLE} AS SELECT 1 AS patient, length(content) AS study "
    "FROM read_text('/etc/passwd')"
)


def _rows_table(path: Path, team_rows: list[dict[str, Any]], schema: pa.Schema) -> Path:
    _write(path, TABLE, team_rows, schema)
    return path


def _varchar_scores(path: Path, honest: list[dict[str, Any]]) -> Path:
    schema = pa.schema(
        [
            f if f.name != "edema" else pa.field("edema", pa.string())
            for f in arrow_schema.PREDICTIONS
        ]
    )
    return _rows_table(path, [{**r, "edema": f"{r['edema']:.3f}"} for r in honest], schema)


Attack = Callable[[Path, Path, list[dict[str, Any]]], Path]
"""(team folder, organiser's database, honest rows) -> the submission."""

ATTACKS: dict[str, tuple[Attack, str]] = {
    "a view over the organiser's labels": (
        lambda d, org, _: _team_db(d / "team.duckdb", _VIEW_OF_LABELS, attach=org),
        "view by that name; only a base table (plain rows) is read",
    ),
    "a view reading /etc/passwd": (
        lambda d, _, __: _team_db(d / "team.duckdb", _VIEW_READING_FILES),
        "view by that name",
    ),
    "a macro": (
        lambda d, _, __: _team_db(
            d / "team.duckdb", f"CREATE MACRO {TABLE}() AS TABLE SELECT 1 AS patient"
        ),
        "nothing by that name",
    ),
    "a generated column": (
        lambda d, _, __: _team_db(
            d / "team.duckdb",
            f"CREATE TABLE {TABLE} (patient BIGINT, edema DOUBLE GENERATED ALWAYS AS (1.0))",
        ),
        "generated column 'edema'",
    ),
    "train-split rows added": (
        lambda d, org, honest: _rows_table(
            d / "team.duckdb",
            honest
            + [
                {**r, **{n: float(r[n] == POSITIVE) for n in LABELS}}
                for r in _labels_rows()
                if r["dataset"] == TRAIN
            ],
            arrow_schema.PREDICTIONS,
        ),
        "20 rows are images outside the valid split",
    ),
    "five rows repeated 20 times": (
        lambda d, _, honest: _rows_table(
            d / "team.duckdb", honest[:5] * 20, arrow_schema.PREDICTIONS
        ),
        "100 rows repeat 5 images",
    ),
    "unknown ids": (
        lambda d, _, honest: _rows_table(
            d / "team.duckdb",
            honest[:-3] + [{**r, "patient": r["patient"] + 1} for r in honest[-3:]],
            arrow_schema.PREDICTIONS,
        ),
        "3 rows match no image (unknown ids)",
    ),
    "VARCHAR scores": (
        lambda d, _, honest: _varchar_scores(d / "team.duckdb", honest),
        "score column 'edema' is string; scores must be numbers",
    ),
    "a NaN score": (
        lambda d, _, honest: _rows_table(
            d / "team.duckdb",
            [{**honest[0], "edema": float("nan")}, *honest[1:]],
            arrow_schema.PREDICTIONS,
        ),
        "1 rows have a NULL or NaN score",
    ),
    "a CSV score that is not a number": (
        lambda d, _, honest: _csv(d / "team.csv", [{**honest[0], "edema": "high"}, *honest[1:]]),
        "cannot read",
    ),
}


def _csv(path: Path, team_rows: list[dict[str, Any]]) -> Path:
    columns = [f.name for f in arrow_schema.PREDICTIONS]
    table = pa.table({c: [str(r[c]) for r in team_rows] for c in columns})
    pacsv.write_csv(table, path)
    return path


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_each_attack_is_refused_with_a_reason(attack, organiser, tmp_path, capsys):
    """Exit 1; the reason on stderr and in the leaderboard; the team not ranked; nothing read."""
    make, reason = ATTACKS[attack]
    folder = tmp_path / "teams"
    folder.mkdir()
    labelled = _labels_rows()
    submission = make(folder, organiser, _honest(labelled, 0.5, seed=2))
    assert _run(organiser, "--submissions", f"cheat={submission}") == 1
    captured = capsys.readouterr()
    assert reason in captured.err
    assert re.search(r"^-\s+cheat\s+n/a", captured.out, re.MULTILINE), captured.out
    with duckdb.connect(str(organiser), read_only=True) as con:
        written = con.sql("SELECT * FROM mimic_cxr_leaderboard").to_arrow_table().to_pylist()
    assert {(r["team"], r["rank"], r["auroc"]) for r in written} == {("cheat", None, None)}
    assert reason in str(written[0]["refused"])


def test_partial_coverage_is_reported_and_fails_unless_accepted(organiser, tmp_path, capsys):
    """10 of 27 images: exit 1 and unranked; with --allow_partial_coverage, ranked; none: exit 1."""
    honest = _honest(_labels_rows(), 0.5, seed=2)
    part = _rows_table(tmp_path / "part.duckdb", honest[:10], arrow_schema.PREDICTIONS)
    assert _run(organiser, "--submissions", str(part)) == 1
    out = capsys.readouterr().out
    assert f"10 of {VALID_IMAGES} images of the valid split (37.0%)" in out
    assert "17 images of the split not predicted (--allow_partial_coverage ranks it)" in out
    assert _run(organiser, "--submissions", str(part), "--allow_partial_coverage") == 0
    assert re.search(r"^1\s+part\s+\d\.\d{3}\s+\[", capsys.readouterr().out, re.MULTILINE)
    empty = _rows_table(tmp_path / "empty.duckdb", [], arrow_schema.PREDICTIONS)
    assert _run(organiser, "--submissions", str(empty)) == 1
    assert f"0 of {VALID_IMAGES} images" in capsys.readouterr().out


def test_leaderboard_of_several_teams_in_one_call(organiser, tmp_path, capsys):
    """Parquet, CSV and DuckDB teams in a folder: ranked by mean AUROC; rare labels flagged."""
    labelled = _labels_rows()
    folder = tmp_path / "teams"
    folder.mkdir()
    teams = {"sharp": 0.3, "blurry": 1.5, "guessing": 50.0}
    submitted = {
        name: _honest(labelled, noise, seed=i) for i, (name, noise) in enumerate(teams.items())
    }
    pq.write_table(
        pa.Table.from_pylist(submitted["sharp"], arrow_schema.PREDICTIONS), folder / "sharp.parquet"
    )
    _csv(folder / "blurry.csv", submitted["blurry"])
    _rows_table(folder / "guessing.duckdb", submitted["guessing"], arrow_schema.PREDICTIONS)
    assert _run(organiser, "--submissions", str(folder), "--min_positives", "3") == 0
    out = capsys.readouterr().out

    valid = [r for r in labelled if r["dataset"] == VALID]
    counts = {n: sum(r[n] == POSITIVE for r in valid) for n in LABELS}
    ranked = [n for n in LABELS if 3 <= counts[n] <= len(valid) - 3]
    assert "fracture" not in ranked
    means = {}
    for team, team_rows in submitted.items():
        by_path = {r["path"]: r for r in team_rows}
        means[team] = np.mean(
            [
                _pairwise(
                    [(by_path[r["path"]][n], _outcome(r[n], UncertainPolicy.IGNORE)) for r in valid]
                )["auroc"]
                for n in ranked
            ]
        )
    order = sorted(means, key=lambda t: -means[t])
    board = re.findall(
        r"^(\d)\s+(\w+)\s+(\d\.\d{3})\s+\[(\d\.\d{3}), (\d\.\d{3})\]", out, re.MULTILINE
    )
    assert [(int(r[0]), r[1]) for r in board] == [(i + 1, t) for i, t in enumerate(order)]
    for _, team, mean, low, high in board:
        assert float(mean) == pytest.approx(means[team], abs=5e-4)
        assert float(low) <= float(mean) <= float(high)
    assert re.search(r"^fracture\s.*not ranked: under 3 positives or negatives$", out, re.MULTILINE)

    with duckdb.connect(str(organiser), read_only=True) as con:
        table = con.sql("SELECT * FROM mimic_cxr_leaderboard").to_arrow_table()
    assert table.schema.names == LEADERBOARD_SCHEMA.names
    assert table.num_rows == len(teams) * (len(LABELS) + 1)
    mean_rows = {r["team"]: r for r in table.to_pylist() if r["label"] is None}
    assert {t: r["rank"] for t, r in mean_rows.items()} == {t: order.index(t) + 1 for t in teams}
    assert all(r["predicted"] == r["split_images"] == VALID_IMAGES for r in mean_rows.values())


def test_the_same_seed_gives_the_same_intervals(organiser, tmp_path, capsys):
    """Two runs, and two teams with the same rows: identical intervals (shared draws)."""
    honest = _honest(_labels_rows(), 0.5, seed=2)
    a = _rows_table(tmp_path / "a.duckdb", honest, arrow_schema.PREDICTIONS)
    b = _rows_table(tmp_path / "b.duckdb", honest, arrow_schema.PREDICTIONS)
    outputs = []
    for _ in range(2):
        assert _run(organiser, "--submissions", str(a), str(b), "--output_table", "x") == 0
        outputs.append(re.findall(r"\[\d\.\d{3}, \d\.\d{3}\]", capsys.readouterr().out))
    assert outputs[0] == outputs[1]
    half = len(outputs[0]) // 2
    assert outputs[0][: half - 1] == outputs[0][half - 1 : 2 * half - 2]


def test_command_usage_errors(organiser, tmp_path, capsys):
    """Bad flags: exit 2 with one line, before anything is read; unreadable labels: 1."""
    team = _rows_table(tmp_path / "t.duckdb", [], arrow_schema.PREDICTIONS)
    cases = {
        "no submission": ["--labels_db", str(organiser), "--split", "valid"],
        "--split is required: one of train, valid": [
            "--labels_db",
            str(organiser),
            "--submissions",
            str(team),
        ],
        "no such file": [
            "--labels_db",
            str(organiser),
            "--split",
            "valid",
            "--submissions",
            str(tmp_path / "x.csv"),
        ],
        "a bare table name": ["--split", "valid", "--submissions", str(team)],
        "team names used twice": [
            "--labels_db",
            str(organiser),
            "--split",
            "valid",
            "--submissions",
            f"a={team}",
            f"a={team}",
        ],
        "a team's file": [
            "--labels_db",
            str(organiser),
            "--split",
            "valid",
            "--submissions",
            str(team),
            "--output_table",
            f"{team}:board",
        ],
    }
    for message, argv in cases.items():
        assert evaluate_main(argv) == 2, message
        err = capsys.readouterr().err
        assert message in err, err
        assert len(err.strip().splitlines()) == 1
    missing = ["--labels_table", f"{organiser}:no_such_table", "--split", "valid"]
    assert evaluate_main([*missing, "--submissions", str(team)]) == 2
    err = capsys.readouterr().err
    assert "no_such_table" in err
    assert len(err.strip().splitlines()) == 1


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
    fracture = LabelCodes("fracture", positive=(True,), negative=(False,))
    assert [label_codes(c) for c in ir.targets] == [fracture, None]
    files = render_dataset(ir)
    assert json.loads(files["dataset.json"])["evaluation"] == {
        "split": None,
        "splits": {},
        "patient": None,
        "labels": [
            {"column": "fracture", "positive": [True], "negative": [False], "uncertain": []}
        ],
    }
    assert "Not evaluated" in files["DATA_DICTIONARY.md"]
    assert "`age`" in files["DATA_DICTIONARY.md"]
    assert fracture.outcome(True, UncertainPolicy.IGNORE) == 1


def _bigquery_table(bigquery: Any, name: str, table_rows: list[dict[str, Any]], schema: str) -> str:
    """A BigQuery table with the generated schema (``labels`` or ``predictions``) and rows."""
    from google.cloud import bigquery as bq

    fields = json.loads((GENERATED / f"{schema}_schema.json").read_text())["fields"]
    full = f"{bigquery.project}.{name}"
    bigquery.client.create_table(bq.Table(full, [bq.SchemaField.from_api_repr(f) for f in fields]))
    assert bigquery.client.insert_rows_json(full, table_rows) == []
    return full.replace(".", ":", 1)


def test_bigquery_labels_submissions_and_leaderboard(bigquery, organiser, tmp_path, capsys):
    """Labels, a team's table and the leaderboard in BigQuery: as in DuckDB; a view is refused."""
    from google.cloud import bigquery as bq

    dataset = bigquery.dataset()
    labelled = _labels_rows()
    honest = _honest(labelled, 1.5, seed=2)
    labels = _bigquery_table(bigquery, f"{dataset}.mimic_cxr_labels", labelled, "labels")
    team = _bigquery_table(bigquery, f"{dataset}.team", honest, "predictions")
    view = bq.Table(f"{bigquery.project}.{dataset}.view")
    view.view_query = f"SELECT * FROM `{bigquery.project}.{dataset}.mimic_cxr_labels`"
    bigquery.client.create_table(view)
    common = ["--split", "valid", "--bootstrap_samples", "20", "--project", bigquery.project]
    view_spec = f"{bigquery.project}:{dataset}.view"
    argv = ["--labels_table", labels, "--submissions", f"good={team}", f"view={view_spec}"]
    assert evaluate_main([*common, *argv]) == 1
    captured = capsys.readouterr()
    assert "view refused" in captured.err
    assert "a VIEW; only a base table (plain rows) is read" in captured.err
    in_bigquery = bigquery.client.query(
        f"SELECT * FROM `{bigquery.project}.{dataset}.mimic_cxr_leaderboard` "
        "WHERE team = 'good' ORDER BY label"
    ).to_arrow()

    parquet = tmp_path / "good.parquet"
    pq.write_table(pa.Table.from_pylist(honest, arrow_schema.PREDICTIONS), parquet)
    assert _run(organiser, "--submissions", str(parquet)) == 0
    local = re.findall(r"^\w+\s+\d\.\d{3}.*$", capsys.readouterr().out, re.MULTILINE)
    assert local == re.findall(r"^\w+\s+\d\.\d{3}.*$", captured.out, re.MULTILINE)
    with duckdb.connect(str(organiser), read_only=True) as con:
        in_duckdb = con.sql(
            "SELECT * FROM mimic_cxr_leaderboard WHERE team = 'good' ORDER BY label NULLS FIRST"
        ).to_arrow_table()
    assert in_bigquery.num_rows == in_duckdb.num_rows == len(LABELS) + 1
    for cloud, here in zip(in_bigquery.to_pylist(), in_duckdb.to_pylist(), strict=True):
        assert cloud == pytest.approx(here)
