"""Issue 16: each data set's ingestion at its release's image count, in every local mode.

Small images (96x80, cycled from a pool of 64: JPEGs of about 3.4 KB, PNGs,
or uncompressed 8-bit DICOM files of about 8 KB) keep decoding from
dominating, so that what is measured is what grows with the number of
images: the runner's buffers, the joins, the sinks. The layouts, each
written by its data set's own synthetic sample writer:

- MIMIC-CXR, legacy layout (`datathon_etl.datasets.mimic_cxr.synthetic`):
  10 tars and the two label CSVs, as the original release; 377,110 images;
- MIMIC-CXR-JPG 2.x (`datathon_etl.datasets.mimic_cxr_jpg.synthetic`): a
  ``files/`` folder tree and the release's four CSVs; 377,110 images;
- NIH ChestX-ray14 (`datathon_etl.datasets.nih_cxr14.synthetic`): a PNG
  folder, ``Data_Entry_2017_v2020.csv`` and the two split lists; 112,120;
- CheXpert v1.0-small (`datathon_etl.datasets.chexpert.synthetic`): the
  JPEG tree with ``train.csv`` and ``valid.csv``; 223,648 (train + valid);
- MIMIC-CXR DICOM (`datathon_etl.datasets.mimic_cxr_dicom.synthetic`): the
  ``.dcm`` tree (view and metadata columns from each header) with the split
  and CheXpert CSVs; 377,110.

Each runs at `SMALL` and its `Layout.full` images in each local mode the
README names, every output on (JPG tree, TFRecords, DuckDB table), one run
each. A run's figures cover its whole process tree (`bench._process`),
start-up included; the manifest's counts must show every image written, or
the bench fails. One run by hand:
``scale._run(scale.LAYOUTS[i], scale.MODES[0], scale.LAYOUTS[i].full)``.

Targets: peak tree RSS at the full count at most `MAX_PEAK_MB` in every
mode, and the wall time per image there within `MAX_COST_GROWTH` of that
at `SMALL` (work that grows faster than the number of images shows there).
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
from datathon_etl.datasets.chexpert import synthetic as chexpert
from datathon_etl.datasets.mimic_cxr import synthetic as legacy
from datathon_etl.datasets.mimic_cxr_dicom import synthetic as dicom
from datathon_etl.datasets.mimic_cxr_jpg import synthetic as jpg2
from datathon_etl.datasets.nih_cxr14 import synthetic as nih
from datathon_etl.framework.synthetic import synthetic_cxr_jpeg

__all__ = ["bench_scale"]

OUTPUT = Path("bench-output") / "scale"
FULL = 377_110
"""MIMIC-CXR's image count."""
NIH_FULL = 112_120
CHEXPERT_FULL = 223_414 + 234
"""CheXpert v1.0-small: train.csv's rows + valid.csv's."""
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
    """A data set layout: its command, its inputs and its release's image count."""

    name: str
    module: str
    write: Callable[[Path, int], list[str]]
    """(folder, images) -> the command's input flags."""
    full: int = FULL
    """The release's image count."""


def _pool(make: Callable[..., bytes] = synthetic_cxr_jpeg, **kwargs: Any) -> list[bytes]:
    """`POOL` small images from ``make(seed, height, width, **kwargs)``."""
    return [make(20_000 + index, 96, 80, **kwargs) for index in range(POOL)]


def _cycled(pool: list[bytes]) -> Callable[[int, int, int], bytes]:
    def image(seed: int, height: int, width: int) -> bytes:
        return pool[seed % len(pool)]

    return image


def _write_legacy(folder: Path, images: int) -> list[str]:
    per_tar = -(-images // TARS)
    sample = legacy.write_sample(
        folder,
        images=images,
        full_size=0,
        images_per_tar=per_tar,
        jpeg=_cycled(_pool(quality=90)),
    )
    return ["--input_tars", *map(str, sample.tars), "--input_csv", *map(str, sample.csvs)]


def _write_jpg2(folder: Path, images: int) -> list[str]:
    sample = jpg2.write_sample(
        folder, images=images, defects=False, jpeg=_cycled(_pool(quality=90)), tars=False
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


def _write_nih(folder: Path, images: int) -> list[str]:
    nih.write_sample(folder, images=images, png=_cycled(_pool(nih.synthetic_cxr_png)))
    return [
        *("--input_prefix", f"{folder}/images/"),
        *("--input_csv", f"{folder}/Data_Entry_2017_v2020.csv"),
        *("--split_lists", f"{folder}/train_val_list.txt", f"{folder}/test_list.txt"),
    ]


def _write_chexpert(folder: Path, images: int) -> list[str]:
    chexpert.write_sample(folder, images=images, jpeg=_cycled(_pool(quality=90)))
    release = folder / chexpert.FOLDER
    return [
        *("--input_prefix", f"{release}/", "--path_match_regex", r".*\.jpg"),
        *("--input_csv", f"{release}/train.csv", f"{release}/valid.csv"),
    ]


def _write_dicom(folder: Path, images: int) -> list[str]:
    sample = dicom.write_sample(
        folder, images=images, dicom=_cycled(_pool(dicom.synthetic_cxr_dicom))
    )
    csvs = [str(sample.csvs[name]) for name in ("split", "chexpert")]
    return [
        *("--input_prefix", f"{folder}/files/", "--path_match_regex", r".*\.dcm"),
        *("--input_csv", *csvs),
    ]


LAYOUTS = (
    Layout("legacy layout, 10 tars", "datathon_etl.generated.mimic_cxr.ingest", _write_legacy),
    Layout("2.x layout, folder tree", "datathon_etl.generated.mimic_cxr_jpg.ingest", _write_jpg2),
    Layout("NIH ChestX-ray14", "datathon_etl.generated.nih_cxr14.ingest", _write_nih, NIH_FULL),
    Layout("CheXpert", "datathon_etl.generated.chexpert.ingest", _write_chexpert, CHEXPERT_FULL),
    Layout("MIMIC-CXR DICOM", "datathon_etl.generated.mimic_cxr_dicom.ingest", _write_dicom),
)
"""By index: 0 legacy, 1 2.x JPG, 2 NIH, 3 CheXpert, 4 DICOM."""


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
    """Every layout at `SMALL` images and at its release's count, in every local mode."""
    rows, targets = [], []
    for layout in LAYOUTS:
        for mode in MODES:
            runs = {images: _run(layout, mode, images) for images in (SMALL, layout.full)}
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
            small, full = runs[SMALL].tree, runs[layout.full].tree
            targets += [
                Target(
                    f"{layout.name}, {mode.label}: peak tree RSS at {layout.full} images",
                    full.peak_rss_bytes / _MB,
                    MAX_PEAK_MB,
                    " MB",
                    at_most=True,
                ),
                Target(
                    f"{layout.name}, {mode.label}: time per image, {layout.full} vs {SMALL} images",
                    (full.wall_s / layout.full) / (small.wall_s / SMALL),
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
            f"96x80 images (pool of {POOL}, cycled) resized to 64x64; every output on; one run"
            " each; 'written' = the manifest's images written (every image, or the bench fails)",
            "wall-clock of the whole run, start-up included; ms/img = wall s / images;"
            " CPU s = user + system of the whole process tree",
            f"memory: the process tree polled every {POLL_SECONDS} s; RSS summed (a page shared"
            " by processes counts in each: an upper bound) and PSS summed (the physical footprint)",
        ],
    )
