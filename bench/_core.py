"""The result types every bench returns, and shared measuring helpers."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

import attrs

__all__ = [
    "BenchResult",
    "Rates",
    "Row",
    "Target",
    "interleaved_rates",
    "median_ratio",
    "pinned_to_one_cpu",
]


@attrs.frozen
class Row:
    """One line of the results table: a method and its measured values.

    Attributes:
        label: The method measured.
        values: Column name -> value; columns are the union over all rows of
            all benches, in order of first appearance, so use shared names
            (``img/s``, ``x original``) where they mean the same thing.
    """

    label: str
    values: Mapping[str, float | str]


@attrs.frozen
class Target:
    """A goal a measured value must reach (``measured >= threshold``, or ``<=``).

    Attributes:
        name: What is compared, e.g. ``"speed vs original"``.
        measured: The value measured in this run.
        threshold: The least acceptable value (the most, with ``at_most``).
        unit: How to print both, e.g. ``"x"`` or ``" dB"``.
        at_most: The value must not exceed the threshold (memory, growth).
    """

    name: str
    measured: float
    threshold: float
    unit: str = ""
    at_most: bool = False

    @property
    def comparison(self) -> str:
        """``>=`` or ``<=``: how the measured value must compare with the threshold."""
        return "<=" if self.at_most else ">="

    @property
    def met(self) -> bool:
        """Whether the measured value reaches the threshold."""
        if self.at_most:
            return self.measured <= self.threshold
        return self.measured >= self.threshold


@attrs.frozen
class BenchResult:
    """What a bench returns.

    Attributes:
        name: The bench's name (the table's first column).
        rows: The measured methods.
        targets: Goals with their measured values.
        notes: Free-form lines printed under the table (set-up, inputs).
    """

    name: str
    rows: Sequence[Row]
    targets: Sequence[Target] = ()
    notes: Sequence[str] = ()

    def to_dict(self) -> dict[str, object]:
        """Returns the result as plain JSON-ready data."""
        return {
            "name": self.name,
            "notes": list(self.notes),
            "rows": [{"label": row.label, "values": dict(row.values)} for row in self.rows],
            "targets": [
                {
                    "name": target.name,
                    "measured": target.measured,
                    "threshold": target.threshold,
                    "comparison": target.comparison,
                    "unit": target.unit,
                    "met": target.met,
                }
                for target in self.targets
            ],
        }


@contextlib.contextmanager
def pinned_to_one_cpu() -> Iterator[int]:
    """Pins this process to one CPU for the block, then restores its affinity.

    Yields:
        The CPU it is pinned to (the last one it was allowed on).
    """
    allowed = os.sched_getaffinity(0)
    cpu = max(allowed)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, allowed)


@attrs.frozen
class Rates:
    """Inputs per second of each method, one value per round, on two clocks.

    Attributes:
        cpu: By this process's CPU time: what the work costs on one core, and
            robust to other processes sharing the machine (use it for ratios).
        wall: By the wall clock, for reference.
    """

    cpu: Mapping[str, Sequence[float]]
    wall: Mapping[str, Sequence[float]]


def interleaved_rates(
    methods: Mapping[str, Callable[[bytes], object]],
    inputs: Sequence[bytes],
    rounds: int,
) -> Rates:
    """Times each method over all inputs, rounds times, methods interleaved.

    Interleaving (A B C, A B C, ...) spreads slow phases of a noisy machine over
    all methods, so ratios taken within one round are fair.

    Args:
        methods: Name -> function of one input.
        inputs: The inputs each round goes through.
        rounds: How many times.

    Returns:
        The rates, per method and round.
    """
    cpu: dict[str, list[float]] = {name: [] for name in methods}
    wall: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(rounds):
        for name, method in methods.items():
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            for data in inputs:
                method(data)
            cpu[name].append(len(inputs) / (time.process_time() - cpu_start))
            wall[name].append(len(inputs) / (time.perf_counter() - wall_start))
    return Rates(cpu=cpu, wall=wall)


def median_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """The median over rounds of numerator / denominator, paired by round."""
    return statistics.median(n / d for n, d in zip(numerators, denominators, strict=True))
