"""The sources' pixel sizes, tallied as images are transformed: a bounded count, not a list.

The transform reads each source's width and height from its header anyway
(`datathon_etl.framework.images.transform_and_read`); `TransformFn`
counts them per bundle in a `PixelSizes`, and `CombinePixelSizes` merges
the bundles' counts into one JSON note for the run's records
(`datathon_etl.framework.run_records.WriteRunRecords`). The driver reads it
back (`read_pixel_sizes`) into the manifest's ``source_pixel_sizes`` parameter,
which the data card shows.

A count holds at most `MAX_SIZES` distinct sizes, whatever the number of
images: past that, sizes are rounded down to a grid of 2, 4, 8, ... pixels
until they fit. The grid is the finest at which all the run's sizes fit,
whatever the order the bundles merge in (a part of the images never needs a
coarser grid than all of them), so the recorded counts are exact for their
grid, and exact sizes when the run has no more than `MAX_SIZES` of them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import attrs

from datathon_etl.framework.run_records import read_run_lines

__all__ = [
    "MAX_SIZES",
    "PIXEL_SIZES_NOTE",
    "CombinePixelSizes",
    "PixelSizes",
    "read_pixel_sizes",
]

MAX_SIZES = 1024
"""Distinct (width, height) pairs a count holds at most (a few tens of KB)."""
PIXEL_SIZES_NOTE = "source_pixel_sizes"
"""The ``note`` of the run record that carries the count."""


@attrs.define
class PixelSizes:
    """Images per source (width, height), each rounded down to a multiple of ``grid``.

    Attributes:
        grid: The rounding, a power of two (1: exact sizes).
        counts: (width, height) -> images.
    """

    grid: int = 1
    counts: Counter[tuple[int, int]] = attrs.field(factory=Counter)

    @property
    def images(self) -> int:
        """Images counted."""
        return sum(self.counts.values())

    def add(self, width: int, height: int) -> None:
        """Counts one image of ``width`` x ``height`` pixels."""
        self.counts[(width - width % self.grid, height - height % self.grid)] += 1
        self._fit(self.grid)

    def merge(self, other: PixelSizes) -> None:
        """Adds ``other``'s counts to these (on the coarser of the two grids, or coarser)."""
        grid = max(self.grid, other.grid)
        self._fit(grid)
        self.counts.update(_on_grid(other.counts, grid))
        self._fit(grid)

    def _fit(self, grid: int) -> None:
        """Rounds to ``grid``, then to the first coarser grid the sizes fit in."""
        while grid != self.grid or len(self.counts) > MAX_SIZES:
            if grid == self.grid:
                grid *= 2
            self.counts = _on_grid(self.counts, grid)
            self.grid = grid

    def to_dict(self) -> dict[str, Any]:
        """``{"grid": ..., "sizes": [[width, height, images], ...]}``, the most frequent first."""
        ordered = sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))
        return {"grid": self.grid, "sizes": [[w, h, n] for (w, h), n in ordered]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PixelSizes:
        """What `to_dict` returned -> the count."""
        return cls(int(data["grid"]), Counter({(w, h): n for w, h, n in data["sizes"]}))


def _on_grid(counts: Counter[tuple[int, int]], grid: int) -> Counter[tuple[int, int]]:
    rounded: Counter[tuple[int, int]] = Counter()
    for (width, height), n in counts.items():
        rounded[(width - width % grid, height - height % grid)] += n
    return rounded


class _MergeFn(beam.CombineFn):
    """Per-bundle `PixelSizes` -> one, merged (a bounded accumulator)."""

    def create_accumulator(self) -> PixelSizes:
        return PixelSizes()

    def add_input(self, accumulator: PixelSizes, element: PixelSizes) -> PixelSizes:
        accumulator.merge(element)
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[PixelSizes]) -> PixelSizes:
        merged = PixelSizes()
        for accumulator in accumulators:
            merged.merge(accumulator)
        return merged

    def extract_output(self, accumulator: PixelSizes) -> PixelSizes:
        return accumulator


class CombinePixelSizes(beam.PTransform):
    """Per-bundle `PixelSizes` -> one JSON note line (`PIXEL_SIZES_NOTE`), also when empty."""

    def expand(self, counts: beam.PCollection) -> beam.PCollection:
        """Merges the counts; writes the note."""
        return (
            counts
            | "Merge" >> beam.CombineGlobally(_MergeFn())
            | "Note"
            >> beam.Map(lambda sizes: json.dumps({"note": PIXEL_SIZES_NOTE, **sizes.to_dict()}))
        )


def read_pixel_sizes(notes_prefix: str) -> dict[str, Any] | None:
    """The run's pixel-size note (`PixelSizes.to_dict`), if it wrote one."""
    for line in read_run_lines(notes_prefix):
        note = json.loads(line)
        if note.get("note") == PIXEL_SIZES_NOTE:
            return {key: value for key, value in note.items() if key != "note"}
    return None
