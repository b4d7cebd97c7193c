"""Issue 16: a MIMIC-CXR-sized ingestion (377,110 images) in every local mode.

Small images (96x80 JPEGs, about 3.4 KB, cycled from a pool of 64) keep
decoding from dominating, so that what is measured is what grows with the
number of images: the runner's buffers, the join, the sinks. Two layouts:

- the legacy layout (`datathon_etl.datasets.mimic_cxr.synthetic`): 10 tars
  and the two label CSVs, as the original release;
- MIMIC-CXR-JPG 2.x (`datathon_etl.datasets.mimic_cxr_jpg.synthetic`): a
  ``files/`` folder tree and the release's four CSVs.

Each runs at `SMALL` and `FULL` images in each local mode the README names,
every output on (JPG tree, TFRecords, DuckDB table), one run each. A run's
figures cover its whole process tree (`bench._process`), start-up included;
the manifest's counts must show every image written, or the bench fails.

Targets: peak tree RSS at `FULL` images at most `MAX_PEAK_MB` in every mode,
and the wall time per image at `FULL` within `MAX_COST_GROWTH` of that at
`SMALL` (work that grows faster than the number of images shows there).
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from bench._core import BenchResult, Row, Target
from bench._process import POLL_SECONDS, TreeRun, run_tree
from datathon_etl.datasets.mimic_cxr import synthetic as legacy
from datathon_etl.datasets.mimic_cxr_jpg import synthetic as jpg2
from datathon_etl.framework.synthetic import synthetic_cxr_jpeg

__all__ = ["bench_scale"]

OUTPUT = Path("bench-output") / "scale"
FULL = 377_110
"""MIMIC-CXR's image count."""
SMALL = 20_000
POOL = 64
TARS = 10
"""The legacy release's tar count (``train_p10.tar`` ... ``valid.tar``)."""
MAX_PEAK_MB = 1500.0
MAX_COST_GROWTH = 1.15
_MB = 1e6


@attrs.frozen
class Mode:
    """A local runner set-up: ``--direct_running_mode`` and ``--direct_num_workers``."""

    name: str
    workers: int

    @property
    def label(self) -> str:
        return f"{self.name}, {self.workers} worker{'s' if self.workers > 1 else ''}"


MODES = (Mode("in_memory", 1), Mode("multi_threading", 2), Mode("multi_processing", 2))
"""Beam's default, then the two modes the README names for several CPUs."""


@attrs.frozen
class Layout:
    """A data set layout: its command, its inputs and its expected image count."""

    name: str
    module: str
    write: Callable[[Path, int], list[str]]
    """(folder, images) -> the command's input flags."""


def _pool() -> list[bytes]:
    return [synthetic_cxr_jpeg(20_000 + index, 96, 80, quality=90) for index in range(POOL)]


def _cycled(pool: list[bytes]) -> Callable[[int, int, int], bytes]:
    def jpeg(seed: int, height: int, width: int) -> bytes:
        return pool[seed % len(pool)]

    return jpeg


def _write_legacy(folder: Path, images: int) -> list[str]:
    per_tar = -(-images // TARS)
    sample = legacy.write_sample(
        folder, images=images, full_size=0, images_per_tar=per_tar, jpeg=_cycled(_pool())
    )
    return ["--input_tars", *map(str, sample.tars), "--input_csv", *map(str, sample.csvs)]


def _write_jpg2(folder: Path, images: int) -> list[str]:
    sample = jpg2.write_sample(
        folder, images=images, defects=False, jpeg=_cycled(_pool()), tars=False
    )
    csvs = [str(sample.csvs[name]) for name in ("metadata", "split", "chexpert")]
    return [
        "--input_prefix",
        f"{folder}/files/",
        "--path_match_regex",
        r".*\.jpg",
        "--input_csv",
        *csvs,
    ]


LAYOUTS = (
    Layout("legacy layout, 10 tars", "datathon_etl.generated.mimic_cxr.ingest", _write_legacy),
    Layout("2.x layout, folder tree", "datathon_etl.generated.mimic_cxr_jpg.ingest", _write_jpg2),
)


def _inputs(layout: Layout, images: int) -> list[str]:
    """Writes (or finds) a layout's inputs; returns the command's input flags."""
    folder = OUTPUT / "inputs" / f"{layout.module.split('.')[-2]}-{images}"
    stamp = folder / "_complete.json"
    made = {"images": images, "pool": POOL, "tars": TARS, "version": 1}
    if stamp.exists() and json.loads(stamp.read_text())["made"] == made:
        flags: list[str] = json.loads(stamp.read_text())["flags"]
        return flags
    shutil.rmtree(folder, ignore_errors=True)
    _progress(f"writing {images} images in the {layout.name}")
    flags = layout.write(folder, images)
    stamp.write_text(json.dumps({"made": made, "flags": flags}))
    return flags


def _progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


@attrs.frozen
class Run:
    """One measured ingestion and its manifest's image counts."""

    tree: TreeRun
    images: dict[str, Any]


def _run(layout: Layout, mode: Mode, images: int) -> Run:
    out = OUTPUT / "runs" / f"{layout.module.split('.')[-2]}-{mode.name}-{images}"
    shutil.rmtree(out, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        layout.module,
        *_inputs(layout, images),
        "--output_dir",
        str(out),
        "--output_jpg_dir",
        str(out / "jpg"),
        "--output_tfrecord_dir",
        str(out / "tfrecords"),
        "--output_image_shape",
        "64",
        "64",
        "--direct_running_mode",
        mode.name,
        "--direct_num_workers",
        str(mode.workers),
    ]
    log = out.with_name(out.name + ".log")
    tree = run_tree(command, log=log, env={"TF_CPP_MIN_LOG_LEVEL": "2"})
    manifest = out / "_manifest.json"
    counts = json.loads(manifest.read_text())["stages"]["images"] if manifest.exists() else {}
    if tree.returncode != 0 or counts.get("written") != images:
        raise RuntimeError(
            f"{layout.name}, {mode.label}, {images} images: exit {tree.returncode}, "
            f"images {counts}; see {log}"
        )
    shutil.rmtree(out, ignore_errors=True)
    _progress(
        f"{layout.name}, {mode.label}, {images} images: {tree.wall_s:.0f} s, "
        f"peak tree RSS {tree.peak_rss_bytes / _MB:.0f} MB"
    )
    return Run(tree, counts)


def bench_scale() -> BenchResult:
    """Both layouts at `SMALL` and `FULL` images, in every local mode."""
    rows, targets = [], []
    for layout in LAYOUTS:
        for mode in MODES:
            runs = {images: _run(layout, mode, images) for images in (SMALL, FULL)}
            for images, run in runs.items():
                tree = run.tree
                rows.append(
                    Row(
                        f"{layout.name}, {mode.label}, {images} images",
                        {
                            "wall s": tree.wall_s,
                            "wall img/s": images / tree.wall_s,
                            "ms/img": 1000 * tree.wall_s / images,
                            "CPU s": tree.cpu_s,
                            "peak tree RSS MB": tree.peak_rss_bytes / _MB,
                            "peak tree PSS MB": tree.peak_pss_bytes / _MB,
                            "others' cores": tree.others_cores,
                            "written": run.images["written"],
                            "quarantined": sum(run.images["quarantined"].values()),
                        },
                    )
                )
            small, full = runs[SMALL].tree, runs[FULL].tree
            targets += [
                Target(
                    f"{layout.name}, {mode.label}: peak tree RSS at {FULL} images",
                    full.peak_rss_bytes / _MB,
                    MAX_PEAK_MB,
                    " MB",
                    at_most=True,
                ),
                Target(
                    f"{layout.name}, {mode.label}: time per image, {FULL} vs {SMALL} images",
                    (full.wall_s / FULL) / (small.wall_s / SMALL),
                    MAX_COST_GROWTH,
                    "x",
                    at_most=True,
                ),
            ]
    return BenchResult(
        name="scale",
        rows=rows,
        targets=targets,
        notes=[
            f"96x80 JPEGs (pool of {POOL}, cycled) resized to 64x64; every output on; one run"
            " each; 'written' = the manifest's images written (every image, or the bench fails)",
            "wall-clock of the whole run, start-up included; ms/img = wall s / images;"
            " CPU s = user + system of the whole process tree",
            f"memory: the process tree polled every {POLL_SECONDS} s; RSS summed (a page shared"
            " by processes counts in each: an upper bound) and PSS summed (the physical footprint)",
        ],
    )
