"""A run's counts: `Tally` elements summed into a `Manifest`, per stage.

A pipeline counts what happens to its inputs as `Tally` elements (``input``,
``written``, ``skipped`` or ``quarantined`` with a reason, per named stage);
`datathon_etl.framework.run_records` sums them inside the pipeline into
files the driver reads back once the pipeline has succeeded. The driver
(`datathon_etl.framework.command`) then turns them into a `Manifest`,
checks that ``input = written + skipped + quarantined`` for every stage and
writes it as ``<output_dir>/_manifest.json`` (renamed into place last, so
its presence means the run finished and its outputs are complete).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

import attrs
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from datathon_etl.framework.run_layout import MANIFEST_NAME

__all__ = [
    "DECODED_VIEWS",
    "IMAGES",
    "PARQUET_SHARDS",
    "PIXEL_SIZES",
    "SHARD_COUNTS",
    "TFRECORD_SHARDS",
    "WEBDATASET_SHARDS",
    "Manifest",
    "ManifestMismatchError",
    "Outcome",
    "StageCounts",
    "Tally",
]

IMAGES = "images"
"""Manifest stage: the images (tar members, image files); every output holds the written ones."""
DECODED_VIEWS = "decoded_views"
"""Manifest parameter: each table written -> its decoded SQL view (see `tables.decoded_view`)."""
TFRECORD_SHARDS = "tfrecord_shards"
"""Manifest parameter: records per TFRecord shard, read back from the shards after the run."""
WEBDATASET_SHARDS = "webdataset_shards"
"""Manifest parameter: samples per WebDataset tar shard, likewise."""
PARQUET_SHARDS = "parquet_shards"
"""Manifest parameter: rows per Parquet shard, likewise."""
PIXEL_SIZES = "source_pixel_sizes"
"""Manifest parameter: the written images' source sizes, ``{"grid": px, "sizes": [[w, h, n]]}``
(`datathon_etl.framework.ingest.pixel_sizes`)."""
SHARD_COUNTS = {
    TFRECORD_SHARDS: "tfrecords",
    WEBDATASET_SHARDS: "webdataset",
    PARQUET_SHARDS: "parquet",
}
"""Each sharded output's records-per-shard parameter -> its name in `Manifest.problems`."""


class Outcome(StrEnum):
    """What happened to an input of a stage."""

    INPUT = "input"
    WRITTEN = "written"
    SKIPPED = "skipped"
    QUARANTINED = "quarantined"


@attrs.frozen
class Tally:
    """``count`` inputs of ``stage`` had ``outcome`` (and ``reason``, if quarantined)."""

    stage: str
    outcome: Outcome = attrs.field(converter=Outcome)
    reason: str = ""
    count: int = 1

    def to_json(self) -> str:
        """Returns one JSON line."""
        return json.dumps(
            {
                "stage": self.stage,
                "outcome": str(self.outcome),
                "reason": self.reason,
                "count": self.count,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, line: str) -> Tally:
        """Parses a line written by `to_json`."""
        data: dict[str, Any] = json.loads(line)
        return cls(**data)


def _sorted_counts(counts: Mapping[str, int]) -> dict[str, int]:
    return dict(sorted((str(key), value) for key, value in counts.items() if value))


@attrs.frozen
class StageCounts:
    """What happened to one stage's inputs. Balanced when every input is accounted for.

    Attributes:
        input: Inputs the stage saw.
        written: Inputs that made an output.
        skipped: Inputs left out on purpose (a filter flag), not errors.
        quarantined: Refused inputs per `Reason` code.
    """

    input: int = 0
    written: int = 0
    skipped: int = 0
    quarantined: Mapping[str, int] = attrs.field(factory=dict, converter=_sorted_counts)

    @property
    def quarantined_total(self) -> int:
        """All quarantined inputs, whatever the reason."""
        return sum(self.quarantined.values())

    @property
    def balanced(self) -> bool:
        """Whether ``input == written + skipped + quarantined``."""
        return self.input == self.written + self.skipped + self.quarantined_total

    def to_dict(self) -> dict[str, Any]:
        """Returns the counts as plain JSON-able data."""
        return {
            "input": self.input,
            "written": self.written,
            "skipped": self.skipped,
            "quarantined": dict(self.quarantined),
        }


class ManifestMismatchError(ValueError):
    """A manifest whose counts do not add up."""


def _sorted_stages(stages: Mapping[str, StageCounts]) -> dict[str, StageCounts]:
    return dict(sorted(stages.items()))


@attrs.frozen
class Manifest:
    """The counts of one run, per stage, and the parameters it ran with."""

    pipeline: str
    stages: Mapping[str, StageCounts] = attrs.field(converter=_sorted_stages)
    parameters: Mapping[str, Any] = attrs.field(factory=dict)

    @classmethod
    def from_tallies(
        cls, pipeline: str, tallies: Iterable[Tally], parameters: Mapping[str, Any] | None = None
    ) -> Manifest:
        """Sums tallies into a manifest."""
        plain: dict[str, dict[Outcome, int]] = defaultdict(lambda: defaultdict(int))
        refused: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for tally in tallies:
            if tally.outcome is Outcome.QUARANTINED:
                refused[tally.stage][tally.reason] += tally.count
            else:
                plain[tally.stage][tally.outcome] += tally.count
        stages = {
            stage: StageCounts(
                input=plain[stage][Outcome.INPUT],
                written=plain[stage][Outcome.WRITTEN],
                skipped=plain[stage][Outcome.SKIPPED],
                quarantined=refused[stage],
            )
            for stage in set(plain) | set(refused)
        }
        return cls(pipeline, stages, dict(parameters or {}))

    @property
    def input_total(self) -> int:
        """Inputs over all stages."""
        return sum(counts.input for counts in self.stages.values())

    @property
    def quarantined_total(self) -> int:
        """Quarantined inputs over all stages."""
        return sum(counts.quarantined_total for counts in self.stages.values())

    def bad_fraction(self) -> float:
        """Quarantined inputs over all inputs, all stages together (0 when none)."""
        return self.quarantined_total / self.input_total if self.input_total else 0.0

    def problems(self) -> list[str]:
        """One line per stage whose counts do not add up, and one if the shards lack images."""
        lines = [
            f"{stage}: input {c.input} != written {c.written} + skipped {c.skipped}"
            f" + quarantined {c.quarantined_total}"
            for stage, c in self.stages.items()
            if not c.balanced
        ]
        images = self.stages.get(IMAGES)
        for parameter, name in SHARD_COUNTS.items():
            shards = self.parameters.get(parameter)
            if shards is not None and images is not None and sum(shards.values()) != images.written:
                lines.append(
                    f"{name}: {sum(shards.values())} records in the shards"
                    f" != {images.written} images written"
                )
        return lines

    def check(self) -> None:
        """Verifies ``input = written + skipped + quarantined`` for every stage.

        Raises:
            ManifestMismatchError: Naming each stage that does not add up.
        """
        if problems := self.problems():
            raise ManifestMismatchError(f"{self.pipeline}: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """Returns the manifest as plain JSON-able data."""
        return {
            "pipeline": self.pipeline,
            "parameters": dict(self.parameters),
            "stages": {stage: counts.to_dict() for stage, counts in self.stages.items()},
        }

    def to_json(self) -> str:
        """Returns sorted-key, indented JSON with a trailing newline."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        """Parses what `to_dict` returns."""
        stages = {name: StageCounts(**counts) for name, counts in data["stages"].items()}
        return cls(data["pipeline"], stages, data.get("parameters", {}))

    def write(self, uri: str, temp_dir: str | None = None) -> None:
        """Writes `to_json` to ``uri`` (through Beam's FileSystems).

        Given ``temp_dir`` (on ``uri``'s filesystem), the file is written
        there and renamed to ``uri`` once complete: a write that fails (a full
        disk) leaves no partial manifest.
        """
        target = f"{temp_dir}/{MANIFEST_NAME}" if temp_dir else uri
        with FileSystems.create(target, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            f.write(self.to_json().encode("utf-8"))
        if target != uri:
            FileSystems.rename([target], [uri])

    @classmethod
    def read(cls, uri: str) -> Manifest:
        """Reads a manifest written by `write`."""
        with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            return cls.from_dict(json.loads(f.read().decode("utf-8")))

    def summary(self) -> str:
        """A few lines for people: one per stage."""
        lines = []
        for stage, c in self.stages.items():
            line = f"{self.pipeline}: {stage}: {c.input} in, {c.written} written"
            if c.skipped:
                line += f", {c.skipped} skipped"
            if c.quarantined:
                reasons = ", ".join(f"{reason} {n}" for reason, n in c.quarantined.items())
                line += f", {c.quarantined_total} quarantined ({reasons})"
            lines.append(line)
        return "\n".join(lines)
