"""Developer benchmarks, run with ``make bench`` (``python -m bench``).

Not shipped in the wheel. Each bench is one function that takes no arguments
and returns a `BenchResult`; to add one, write the function (in its own module
here) and append it to `BENCHES` in ``bench/__main__.py``. The runner prints
one table of every bench's rows and a met / not met line per target, and writes
``bench-output/results.json``.
"""

from __future__ import annotations

from bench._core import (
    BenchResult,
    Rates,
    Row,
    Target,
    interleaved_rates,
    median_ratio,
    pinned_to_one_cpu,
)

__all__ = [
    "BenchResult",
    "Rates",
    "Row",
    "Target",
    "interleaved_rates",
    "median_ratio",
    "pinned_to_one_cpu",
]
