"""The local runner's modes lose no element, even when encoding one takes seconds."""

from __future__ import annotations

import time
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from datathon_etl.framework.flags import local_runner
from datathon_etl.framework.runner import give_back_memory

FLUSH_PERIOD_S = 1.0
"""How often Beam's in-process gRPC workers flushed their output streams, from a timer."""


class SlowToEncode:
    """A value whose pickling outlasts the flush period: its encoding spans a tick.

    The element's first bytes (timestamp, window, key, type tag) are already in
    the output stream while it is pickled, so a timed flush would cut it in two.
    """

    def __init__(self, number: int) -> None:
        self.number = number

    def __reduce__(self) -> tuple[Any, ...]:
        time.sleep(FLUSH_PERIOD_S * 1.5)
        return (SlowToEncode, (self.number,))


def _with_slow_one(_: int) -> list[tuple[str, Any]]:
    return [("a", 1), ("b", SlowToEncode(2)), ("c", 3)]


def _number(value: Any) -> int:
    return value.number if isinstance(value, SlowToEncode) else int(value)


@pytest.mark.parametrize("mode", ["in_memory", "multi_threading", "multi_processing"])
def test_an_element_slow_to_encode_crosses_a_stage_boundary_whole(mode: str) -> None:
    options = PipelineOptions(direct_running_mode=mode, direct_num_workers=2)
    with beam.Pipeline(runner=local_runner(options), options=options) as p:
        pairs = p | beam.Create([0], reshuffle=False) | beam.FlatMap(_with_slow_one)
        # The grouping is a stage boundary: the pairs cross the data plane.
        grouped = (
            pairs | beam.GroupByKey() | beam.MapTuple(lambda k, vs: (k, list(map(_number, vs))))
        )
        assert_that(grouped, equal_to([("a", [1]), ("b", [2]), ("c", [3])]))


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


def test_memory_a_finished_pipeline_freed_goes_back_to_the_system() -> None:
    """Freed but scattered allocations (a grouping's values) stay resident until given back."""
    values = [bytes(600) + i.to_bytes(4, "little") for i in range(300_000)]
    survivors = values[::50]  # one in fifty stays, so no page empties by itself
    del values
    before = _rss_mb()
    give_back_memory()
    assert before - _rss_mb() > 100
    assert len(survivors) == 6000
