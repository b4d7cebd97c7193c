"""AUROC with images weighted, and its bootstrap over patients.

One implementation serves the point estimate (every weight 1) and each
bootstrap replicate (an image weighs as many times as its patient was
drawn). AUROC is the probability that a random positive scores above a
random negative, a tie counting one half::

    AUROC = sum over score groups g of  pos(g) * (neg(below g) + neg(g) / 2)
            / (pos(all) * neg(all))

with pos and neg the summed weights of positive and negative images; with
unit weights that is the Mann-Whitney rank formula. Scores are compared as
stored (logits); any monotone transform gives the same AUROC.

The bootstrap resamples patients, not images (one patient's images are not
independent): each replicate draws as many patients as the split has, with
replacement, from the split's patients (the same draws for every team and
label, given the seed), and the interval is the 2.5th and 97.5th
percentiles of the replicates' AUROCs; a replicate without a positive or a
negative of the label is left out.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["bootstrap_counts", "interval", "weighted_auroc"]

_CHUNK = 100
"""Replicates drawn and scored at once: bounds memory to ~100 x images floats."""


def weighted_auroc(
    scores: npt.NDArray[np.float64], positive: npt.NDArray[np.bool_], weights: npt.NDArray[Any]
) -> npt.NDArray[np.float64]:
    """AUROC of one label under each row of ``weights``.

    Args:
        scores: ``[n]`` the images' scores.
        positive: ``[n]`` whether each image is positive (else negative).
        weights: ``[replicates, n]`` each image's weight in each replicate.

    Returns:
        ``[replicates]`` AUROCs; NaN where a replicate has no positive or no negative weight.
    """
    order = np.argsort(scores, kind="stable")
    ordered = scores[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    w = np.asarray(weights, dtype=np.float64)[:, order]
    y = positive[order]
    pos = np.add.reduceat(w * y, starts, axis=1)
    neg = np.add.reduceat(w * ~y, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    wins = (pos * (below + 0.5 * neg)).sum(axis=1)
    pairs = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, wins / pairs, np.nan)


def bootstrap_counts(patients: int, replicates: int, seed: int) -> Iterator[npt.NDArray[np.int64]]:
    """Yields ``[chunk, patients]`` draw counts, ``replicates`` rows in all, from ``seed``."""
    rng = np.random.default_rng(seed)
    uniform = np.full(patients, 1.0 / patients)
    done = 0
    while done < replicates:
        size = min(_CHUNK, replicates - done)
        yield rng.multinomial(patients, uniform, size=size)
        done += size


def interval(replicates: npt.NDArray[np.float64]) -> tuple[float, float] | None:
    """The 95% percentile interval of the finite replicates, or None without any."""
    kept = replicates[np.isfinite(replicates)]
    if not kept.size:
        return None
    low, high = np.percentile(kept, [2.5, 97.5])
    return float(low), float(high)
