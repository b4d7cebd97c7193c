"""Scores one team's rows against the evaluation split: checks, AUROC, intervals.

`EvaluationSplit.prepare` reads, once for every team, the split's patients
and each label's positives and negatives over the whole split (a label with
fewer than ``min_positives`` positives, or negatives, is reported but not
ranked, and left out of the mean). `score_submission` then checks a team's
rows (`checks_sql`), refuses them with counts when any row repeats an image,
names an unknown image or one outside the split, or lacks a score, and
otherwise computes each label's AUROC over the matched images with a 95%
bootstrap interval over patients (`auroc`), and the mean AUROC over the
ranked labels with its interval from the same replicates.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import attrs
import numpy as np
import pyarrow as pa

from datathon_etl.framework.evaluate.auroc import bootstrap_counts, interval, weighted_auroc
from datathon_etl.framework.evaluate.policy import EvaluationSpec, UncertainPolicy
from datathon_etl.framework.evaluate.sql import (
    checks_sql,
    patients_sql,
    scored_sql,
    scoring_connection,
    split_counts_sql,
)

__all__ = [
    "Coverage",
    "EvaluationSplit",
    "LabelScore",
    "Settings",
    "TeamResult",
    "score_submission",
]


@attrs.frozen
class Settings:
    """How submissions are scored (the evaluate flags).

    Attributes:
        policy: What uncertain labels count as.
        split: The evaluation split's name, or None where the dataset has no split.
        samples: Bootstrap replicates (0: no intervals).
        seed: The bootstrap's seed.
        min_positives: Fewer positives (or negatives) in the split: not ranked.
        allow_partial: Rank a submission that leaves images of the split out.
    """

    policy: UncertainPolicy = UncertainPolicy.IGNORE
    split: str | None = None
    samples: int = 1000
    seed: int = 0
    min_positives: int = 10
    allow_partial: bool = False


@attrs.frozen
class EvaluationSplit:
    """The labels and what every team is scored on.

    Attributes:
        labels: The organiser's labels table (every split).
        code: The split's code in the spec's split column, or None.
        patients: The split's patients, sorted.
        positives: Per label, its positives over the split.
        negatives: Per label, its negatives over the split.
    """

    labels: pa.Table
    code: int | None
    patients: tuple[str, ...]
    positives: tuple[int, ...]
    negatives: tuple[int, ...]

    @classmethod
    def prepare(cls, spec: EvaluationSpec, labels: pa.Table, settings: Settings) -> EvaluationSplit:
        """Counts the split's patients and each label's positives and negatives."""
        code = spec.splits[settings.split] if settings.split is not None else None
        with scoring_connection() as con:
            con.register("labels", labels)
            patients = [row[0] for row in con.execute(patients_sql(spec, code)).fetchall()]
            (counts,) = con.execute(split_counts_sql(spec, code, settings.policy)).fetchall()
        n = len(spec.labels)
        return cls(
            labels=labels,
            code=code,
            patients=tuple(patients),
            positives=tuple(int(c) for c in counts[0 : 2 * n : 2]),
            negatives=tuple(int(c) for c in counts[1 : 2 * n : 2]),
        )


@attrs.frozen
class LabelScore:
    """One label's score for one team.

    Attributes:
        label: The label's column.
        auroc: AUROC over the team's matched images, or None without both outcomes.
        low: The 95% interval's lower end, or None.
        high: Its upper end, or None.
        positives: The team's matched images positive for the label.
        negatives: Those negative.
        excluded: Those left out (uncertain under ``ignore``, or a NULL label).
        ranked: Whether the label counts in the mean (enough positives and
            negatives in the split).
    """

    label: str
    auroc: float | None
    low: float | None
    high: float | None
    positives: int
    negatives: int
    excluded: int
    ranked: bool


@attrs.frozen
class Coverage:
    """How much of the split a submission predicts.

    Attributes:
        rows: Rows in the submission.
        images: Images in the evaluation split.
        predicted: Images of the split with a row.
        repeated_rows: Rows whose image has another row too.
        repeated_images: Images with more than one row.
        unknown: Rows matching no image (ids or path unknown).
        outside_split: Rows of images of another split.
        missing_scores: Rows with a NULL or NaN score.
    """

    rows: int
    images: int
    predicted: int
    repeated_rows: int = 0
    repeated_images: int = 0
    unknown: int = 0
    outside_split: int = 0
    missing_scores: int = 0

    @property
    def missing(self) -> int:
        """Images of the split without a row."""
        return self.images - self.predicted

    def refusal(self, split: str | None) -> str | None:
        """Why the rows cannot be scored, with counts; None when they can."""
        where = f"the {split} split" if split else "the labels"
        reasons = []
        if self.repeated_rows:
            reasons.append(f"{self.repeated_rows} rows repeat {self.repeated_images} images")
        if self.outside_split:
            reasons.append(f"{self.outside_split} rows are images outside {where}")
        if self.unknown:
            reasons.append(f"{self.unknown} rows match no image (unknown ids)")
        if self.missing_scores:
            reasons.append(f"{self.missing_scores} rows have a NULL or NaN score")
        return "; ".join(reasons) or None

    def describe(self, split: str | None) -> str:
        """``27 of 27 images of the valid split (100.0%)``."""
        share = 100.0 * self.predicted / self.images if self.images else 0.0
        where = f"the {split} split" if split else "the labels"
        return f"{self.predicted} of {self.images} images of {where} ({share:.1f}%)"


@attrs.frozen
class TeamResult:
    """One submission's outcome.

    Attributes:
        team: The team's name.
        source: Where its rows came from.
        coverage: What its rows cover (None when they could not be read).
        labels: Per label, in model output order (empty when refused).
        mean: Mean AUROC over the ranked labels, or None.
        mean_low: Its 95% interval's lower end, or None.
        mean_high: Its upper end, or None.
        refused: Why it was not scored, or None.
    """

    team: str
    source: str
    coverage: Coverage | None
    labels: tuple[LabelScore, ...] = ()
    mean: float | None = None
    mean_low: float | None = None
    mean_high: float | None = None
    refused: str | None = None

    def rankable(self, settings: Settings) -> bool:
        """Scored, with a mean, and complete (or partial coverage accepted)."""
        return (
            self.refused is None
            and self.mean is not None
            and self.coverage is not None
            and (self.coverage.missing == 0 or settings.allow_partial)
        )


def _float(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def score_submission(
    spec: EvaluationSpec,
    team: str,
    source: str,
    predictions: pa.Table,
    split: EvaluationSplit,
    settings: Settings,
) -> TeamResult:
    """Checks and scores one team's rows (conformed to the predictions schema)."""
    with scoring_connection() as con:
        con.register("predictions", predictions)
        con.register("labels", split.labels)
        (counts,) = con.execute(checks_sql(spec, split.code)).fetchall()
        rows, rep_rows, rep_images, unknown, outside, no_score, missing, images = map(int, counts)
        coverage = Coverage(
            rows=rows,
            images=images,
            predicted=images - missing,
            repeated_rows=rep_rows,
            repeated_images=rep_images,
            unknown=unknown,
            outside_split=outside,
            missing_scores=no_score,
        )
        refusal = coverage.refusal(settings.split)
        if refusal:
            return TeamResult(team, source, coverage, refused=refusal)
        scored = con.sql(scored_sql(spec, split.code, settings.policy)).to_arrow_table()
    ranked = tuple(
        p >= settings.min_positives and n >= settings.min_positives
        for p, n in zip(split.positives, split.negatives, strict=True)
    )
    return _score(spec, team, source, coverage, scored, split, settings, ranked)


def _score(
    spec: EvaluationSpec,
    team: str,
    source: str,
    coverage: Coverage,
    scored: pa.Table,
    split: EvaluationSplit,
    settings: Settings,
    ranked: Sequence[bool],
) -> TeamResult:
    index = {patient: i for i, patient in enumerate(split.patients)}
    image_patient = np.array(
        [index[p] for p in scored.column("patient").to_pylist()], dtype=np.int64
    )
    kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for i in range(len(spec.labels)):
        outcome = scored.column(f"outcome_{i}").to_numpy(zero_copy_only=False)
        scores = scored.column(f"score_{i}").to_numpy(zero_copy_only=False).astype(np.float64)
        present = ~np.isnan(outcome.astype(np.float64))
        kept.append((scores[present], outcome[present].astype(bool), image_patient[present]))
    points = [
        weighted_auroc(s, y, np.ones((1, s.size)))[0] if s.size else np.nan for s, y, _ in kept
    ]
    replicates = np.full((len(kept), settings.samples), np.nan)
    done = 0
    for counts in bootstrap_counts(len(split.patients), settings.samples, settings.seed):
        chunk = slice(done, done + counts.shape[0])
        for i, (s, y, patients) in enumerate(kept):
            if s.size:
                replicates[i, chunk] = weighted_auroc(s, y, counts[:, patients])
        done += counts.shape[0]
    labels = []
    for i, (codes, (s, y, _)) in enumerate(zip(spec.labels, kept, strict=True)):
        bounds = interval(replicates[i]) if settings.samples else None
        labels.append(
            LabelScore(
                label=codes.column,
                auroc=_float(points[i]),
                low=bounds[0] if bounds else None,
                high=bounds[1] if bounds else None,
                positives=int(y.sum()),
                negatives=int((~y).sum()),
                excluded=coverage.predicted - s.size,
                ranked=ranked[i],
            )
        )
    chosen = [i for i, r in enumerate(ranked) if r and np.isfinite(points[i])]
    if not chosen:
        return TeamResult(team, source, coverage, tuple(labels))
    mean = float(np.mean([points[i] for i in chosen]))
    bounds = None
    if settings.samples:
        with warnings.catch_warnings():  # a replicate without any AUROC: NaN, left out
            warnings.simplefilter("ignore", RuntimeWarning)
            bounds = interval(np.nanmean(replicates[chosen], axis=0))
    return TeamResult(
        team,
        source,
        coverage,
        tuple(labels),
        mean=mean,
        mean_low=bounds[0] if bounds else None,
        mean_high=bounds[1] if bounds else None,
    )
