"""Progress lines count images (found by the join, then done), not label rows."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from datathon_etl.framework.ingest.transforms import Progress


def test_lines_count_the_images_found_and_done(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = iter(float(t) for t in range(100))
    fake_time = SimpleNamespace(monotonic=lambda: next(clock))
    monkeypatch.setattr("datathon_etl.framework.ingest.transforms.time", fake_time)
    progress = Progress("run-1", "demo ingest")
    for _ in range(40):  # images the join packs; label rows do not count
        progress.found()
    for _ in range(12):  # one second each on the fake clock: a line every 5
        progress.done()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    done, found, rate, left = re.match(
        r"demo ingest: (\d+) of (\d+) images done in this process, ([\d.]+)/s, about (\d+) s left",
        lines[-1],
    ).groups()  # type: ignore[union-attr]
    assert (int(done), int(found)) == (11, 40)
    assert float(rate) == pytest.approx(1.1)  # 11 done in the 10 s since the first
    assert int(left) == round(29 / 1.1)


def test_images_refused_at_the_join_count_as_done(capsys: pytest.CaptureFixture[str]) -> None:
    progress = Progress("run-2", "x")
    for _ in range(3):
        progress.found()
    progress.done(3)
    assert Progress._runs["run-2"][:2] == [3, 3]


def test_nothing_done_does_not_start_the_clock() -> None:
    """A path with label rows and no image refuses none: the rate starts at the first image."""
    progress = Progress("run-3", "x")
    progress.found()
    progress.done(0)
    assert Progress._runs["run-3"][1:3] == [0, 0.0]
