"""The sources' pixel-size count: exact when it can be, bounded always, the same in any order."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from datathon_etl.framework.ingest import pixel_sizes
from datathon_etl.framework.ingest.pixel_sizes import PixelSizes

CAP = 8
"""A small `MAX_SIZES`, so that a few sizes overflow it."""


@pytest.fixture(autouse=True)
def small_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pixel_sizes, "MAX_SIZES", CAP)


def _counted(sizes: list[tuple[int, int]], bundles: int, seed: int) -> PixelSizes:
    """Counts ``sizes`` in ``bundles`` shuffled parts, merged in a shuffled order."""
    rng = random.Random(seed)
    shuffled = sizes[:]
    rng.shuffle(shuffled)
    parts = [PixelSizes() for _ in range(bundles)]
    for n, (width, height) in enumerate(shuffled):
        parts[n % bundles].add(width, height)
    rng.shuffle(parts)
    merged = PixelSizes()
    for part in parts:
        merged.merge(part)
    return merged


def _finest_grid(sizes: list[tuple[int, int]]) -> int:
    """The smallest power of two at which the sizes, rounded down, fit in `CAP`."""
    grid = 1
    while len({(w // grid, h // grid) for w, h in sizes}) > CAP:
        grid *= 2
    return grid


@pytest.mark.parametrize(
    "sizes",
    [
        [(2544, 3056)] * 5 + [(3056, 2544)] * 3 + [(2022, 2022)],
        [(256 + n, 300 + n % 3) for n in range(CAP)] * 2,
        [(256 + n, 300) for n in range(CAP + 1)],
        [(1000 + 7 * n, 900 + 13 * (n % 11)) for n in range(200)],
        [(n, 1) for n in range(1, 5000, 3)],
    ],
    ids=["few", "at-the-cap", "one-over", "many", "wide-range"],
)
@pytest.mark.parametrize("bundles", [1, 3, 17])
def test_the_count_is_the_finest_grid_that_fits_whatever_the_order(
    sizes: list[tuple[int, int]], bundles: int
) -> None:
    grid = _finest_grid(sizes)
    expected = Counter((w - w % grid, h - h % grid) for w, h in sizes)
    for seed in range(3):
        counted = _counted(sizes, bundles, seed)
        assert counted.grid == grid
        assert counted.counts == expected
        assert counted.images == len(sizes)
        assert len(counted.counts) <= CAP


def test_the_record_is_most_frequent_first_and_reads_back() -> None:
    counted = _counted([(3, 4), (1, 2), (3, 4), (5, 6), (1, 2), (3, 4)], bundles=2, seed=0)
    record = counted.to_dict()
    assert record == {"grid": 1, "sizes": [[3, 4, 3], [1, 2, 2], [5, 6, 1]]}
    assert PixelSizes.from_dict(record) == counted
