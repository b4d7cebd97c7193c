"""Tallies: counted per bundle, summed exactly by `WriteRunRecords`."""

from __future__ import annotations

from pathlib import Path

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that

from datathon_etl.framework.flags import local_runner
from datathon_etl.framework.manifest import Outcome, Tally
from datathon_etl.framework.run_layout import RunLayout
from datathon_etl.framework.run_records import TallyEach, WriteRunRecords, read_tallies

ELEMENTS = 1000


def test_tally_each_counts_per_bundle_and_the_sums_are_exact(tmp_path: Path) -> None:
    layout = RunLayout(str(tmp_path / "out"))
    layout.prepare()
    options = PipelineOptions(direct_running_mode="multi_threading", direct_num_workers=2)

    def one_per_bundle_at_most(tallies: list[Tally]) -> None:
        assert sum(t.count for t in tallies) == ELEMENTS
        assert len(tallies) < ELEMENTS / 10  # a tally per bundle, not per element

    with beam.Pipeline(runner=local_runner(options), options=options) as p:
        items = p | beam.Create(range(ELEMENTS))  # reshuffled: spread over both workers
        tallies = items | TallyEach("things", Outcome.INPUT)
        assert_that(tallies, one_per_bundle_at_most)
        written = (
            items
            | "Written" >> beam.Filter(lambda n: n % 3)
            | "TallyWritten" >> TallyEach("things", Outcome.WRITTEN)
        )
        refusals = p | "NoRefusals" >> beam.Create([])
        all_tallies = (tallies, written) | beam.Flatten()
        _ = (refusals, all_tallies) | WriteRunRecords(layout)

    summed = {(t.stage, str(t.outcome)): t.count for t in read_tallies(layout.tallies_prefix)}
    assert summed == {
        ("things", "input"): ELEMENTS,
        ("things", "written"): sum(1 for n in range(ELEMENTS) if n % 3),
    }
