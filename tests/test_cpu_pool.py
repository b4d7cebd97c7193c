"""The per-process CPU pool, and the ingestion's transform step that uses it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from apache_beam.pvalue import TaggedOutput
from apache_beam.utils.windowed_value import WindowedValue
from PIL import Image

from datathon_etl.framework.cpu_pool import CpuPool, cpu_pool
from datathon_etl.framework.images import ImageSpec
from datathon_etl.framework.ingest import transforms
from datathon_etl.framework.ingest.join import ImageItem, LabelRecord
from datathon_etl.framework.ingest.transforms import (
    ROWS_TAG,
    SIZES_TAG,
    TALLIES_TAG,
    Progress,
    TransformFn,
)
from datathon_etl.framework.manifest import Outcome, Tally
from datathon_etl.framework.quarantine import QUARANTINE_TAG, Reason
from datathon_etl.framework.schema.example import Example

IMAGES = Path(__file__).parent / "data" / "images"


def test_pool_returns_results_from_its_threads() -> None:
    pool = CpuPool(2)
    futures = [pool.submit(lambda x: (x * x, threading.current_thread().name), i) for i in range(8)]
    results = [future.result(timeout=10) for future in futures]
    assert [square for square, _ in results] == [i * i for i in range(8)]
    assert {name for _, name in results} <= {"cpu-pool-0", "cpu-pool-1"}


def test_pool_hands_exceptions_to_the_future() -> None:
    pool = CpuPool(1)
    future = pool.submit(int, "not a number")
    with pytest.raises(ValueError, match="not a number"):
        future.result(timeout=10)
    # The thread survives the exception.
    assert pool.submit(int, "7").result(timeout=10) == 7


def test_pool_threads_never_keep_a_finished_command_waiting() -> None:
    CpuPool(2)
    pool_threads = [t for t in threading.enumerate() if t.name.startswith("cpu-pool-")]
    assert pool_threads
    assert all(t.daemon for t in pool_threads)


def test_one_cpu_means_no_pool() -> None:
    script = (
        "import os\n"
        "from datathon_etl.framework.cpu_pool import cpu_pool\n"
        "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
        "print(cpu_pool())\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None"


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs")
def test_a_thread_per_cpu_and_one_pool_per_process() -> None:
    pool = cpu_pool()
    assert pool is not None
    assert pool.threads == len(os.sched_getaffinity(0))
    assert cpu_pool() is pool


Element = tuple[str, tuple[ImageItem[str], LabelRecord[str, dict[str, str]]]]


def _element(path: str, uri: str, where: str) -> Element:
    record = LabelRecord(path, {"label": where}, (("label_rows", where),))
    return path, (ImageItem(uri, path, ref=uri), record)


def _size(uri: str) -> tuple[int, int]:
    with Image.open(uri) as image:
        return image.size


def _run_bundle(fn: TransformFn, elements: list[Element]) -> tuple[list[Any], list[Any]]:
    """Runs one bundle through the DoFn as a runner would; returns (from process, from finish)."""
    fn.setup()
    fn.start_bundle()
    from_process = [output for element in elements for output in fn.process(element)]
    from_finish = list(fn.finish_bundle() or [])
    fn.teardown()
    return from_process, from_finish


@pytest.mark.parametrize("threads", [0, 2], ids=["inline", "pool"])
def test_transform_keeps_input_order_and_routes_refusals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    pool = CpuPool(threads) if threads else None
    monkeypatch.setattr(transforms, "cpu_pool", lambda: pool)
    good = sorted(IMAGES.glob("*.png"))
    bad = tmp_path / "truncated.png"
    bad.write_bytes(good[0].read_bytes()[:200])
    uris = [str(good[0]), str(bad), str(good[1]), str(good[0]), str(good[1])]
    elements = [_element(f"img{i}.png", uri, f"labels.csv:{i + 2}") for i, uri in enumerate(uris)]
    fn = TransformFn(ImageSpec(32, 32), Progress("order", "test"))
    # With a pool, the last image is held until well after the input ends, so
    # that it is certainly still in flight then (a 512x512 PNG takes
    # milliseconds: left alone, it may finish first on a busy machine).
    release, calls, lock = threading.Event(), [0], threading.Lock()
    from datathon_etl.framework.images import Transformed
    from datathon_etl.framework.images import transform_and_read as real_transform

    def held_last(data: bytes, spec: ImageSpec, keywords: Sequence[str]) -> Transformed:
        with lock:
            calls[0] += 1
            last = calls[0] == len(uris)
        if last and threads:
            release.wait()
        return real_transform(data, spec, keywords)

    monkeypatch.setattr(transforms, "transform_and_read", held_last)
    threading.Timer(0.5, release.set).start()

    from_process, (*from_finish, rows_written, sizes) = _run_bundle(fn, elements)

    # Whatever was still in flight at the end of the bundle comes out of
    # finish_bundle, windowed as a runner needs it; then the bundle's count of
    # the rows written with its examples, and of the sources' pixel sizes,
    # one per example.
    assert isinstance(rows_written, TaggedOutput)
    assert rows_written.tag == TALLIES_TAG
    assert rows_written.value.value == Tally("label_rows", Outcome.WRITTEN, count=4)
    assert isinstance(sizes, TaggedOutput)
    assert sizes.tag == SIZES_TAG
    written = [uris[0], uris[2], uris[3], uris[4]]
    assert sizes.value.value.counts == Counter(_size(uri) for uri in written)
    finished = []
    for output in from_finish:
        value = output.value if isinstance(output, TaggedOutput) else output
        assert isinstance(value, WindowedValue)
        finished.append(
            TaggedOutput(output.tag, value.value)
            if isinstance(output, TaggedOutput)
            else value.value
        )
    outputs = from_process + finished
    examples = [o for o in outputs if isinstance(o, Example)]
    assert [e.path for e in examples] == ["img0.png", "img2.png", "img3.png", "img4.png"]
    assert all(e.labels == {"label": f"labels.csv:{int(e.path[3]) + 2}"} for e in examples)
    refusals = {o.tag: o.value for o in outputs if isinstance(o, TaggedOutput)}
    assert set(refusals) == {QUARANTINE_TAG, ROWS_TAG}
    assert refusals[QUARANTINE_TAG].path == "img1.png"
    assert refusals[QUARANTINE_TAG].reason is Reason.TRUNCATED_IMAGE
    assert refusals[ROWS_TAG] == ("label_rows", refusals[ROWS_TAG][1])
    assert refusals[ROWS_TAG][1].source == "labels.csv:3"
    assert refusals[ROWS_TAG][1].reason is Reason.TRUNCATED_IMAGE
    # With a pool the last image (a 512x512 PNG: milliseconds) is still in
    # flight when the input ends; inline, nothing is left for finish_bundle.
    assert bool(from_finish) == bool(threads)
