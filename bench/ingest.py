"""Issue 8, items 2 to 4: the MIMIC-CXR ingestion end to end, against the bare loop.

Every run is a child process (``python -m datathon_etl.generated.mimic_cxr.ingest``,
the generated entry point's ``main``) with every output on: the resized JPG
tree, the TFRecords and the DuckDB labels table. Wall-clock time covers the
whole run, start-up included, as a user sees it; CPU time and memory cover the
whole process tree (see `bench._process`).

- ``ingest`` (item 2): the ingestion with 1 and with 2 workers against the
  bare loop (`bench._bare`: the same images read from the same tars through
  `transform_image`, one process pinned to one CPU, no Beam). The 1-worker run
  is ``--direct_running_mode in_memory`` pinned to one CPU: one process doing
  everything, as the bare loop does. ``multi_processing`` with 1 worker is no
  1-worker baseline: its runner is a second process, free to use the other
  CPU, and it pays for starting a worker. The 2-worker target is judged on
  ``multi_threading`` with 2 workers, unpinned: the recommended local mode (no
  worker process to start; Pillow decodes and resizes without the GIL).
  ``multi_processing`` with 2 workers (a process per worker, as on Dataflow)
  shows its fixed cost, and item 4 runs it. Two bare loops in parallel,
  each on its own CPU over half the tars, give the machine's ceiling for 2
  workers (what 2 CPUs do with no coordination at all; below 2x when other
  processes hold a CPU). Each set-up also runs on a handful of images, to show
  its fixed cost (start-up, pipeline construction, per-stage and shutdown
  costs) apart from its per-image rate.
- ``ingest_one_tar`` (item 3): all images in one uncompressed tar, 2 workers
  against 1 (the same set-ups).
- ``ingest_memory`` (item 4): peak memory of the 2-worker ``multi_processing``
  run (the larger of the two 2-worker set-ups) at N and 4N images.

- ``ingest`` (issue 21) also runs the 2-worker set-up with the WebDataset and
  Parquet shards on beside the TFRecords, in the same rounds: the cost of the
  two formats for PyTorch users (target: at most 10% slower than TFRecords only).

Inputs are synthetic (`datathon_etl.datasets.mimic_cxr.synthetic.write_sample`
for the paths and label CSVs), with every member's bytes replaced by one of a
pool of full-size 2544x3056 quality-95 synthetic chest X-rays (1.4 to 1.8 MB,
like MIMIC-CXR-JPG), cycled: making one takes 0.6 s, so a pool keeps input
generation short, and decoding cost does not depend on whether two members
hold the same bytes. They are written deterministically under
``bench-output/ingest/inputs/`` and reused by later runs when present.

Runs are interleaved by round (bare, ceiling, 1 worker, 2 workers, then
again), and each ratio is the median of the per-round ratios. This machine is
shared: before each run the bench waits (briefly) for the CPUs to be free,
and it reports how many CPUs other processes kept busy during the runs. The
CPU-time ratio (``x bare loop CPU``: bare loop CPU seconds / the run's, over
the whole process tree) is the share of the machine's work that went into
images, and is much less sensitive to other processes than wall time.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tarfile
import time
from collections.abc import Sequence
from pathlib import Path

import attrs

from bench._core import BenchResult, Row, Target
from bench._process import POLL_SECONDS, TreeRun, machine_busy_s, run_tree
from datathon_etl.datasets.mimic_cxr.synthetic import FULL_SIZE, write_sample
from datathon_etl.framework.synthetic import synthetic_cxr_jpeg

__all__ = ["bench_ingest", "bench_ingest_memory", "bench_ingest_one_tar"]

OUTPUT = Path("bench-output") / "ingest"
POOL = 32
"""Distinct full-size images the members cycle through."""
SPEED_IMAGES = 2000
"""Images in the speed benches (items 2 and 3): about a minute of the bare loop, so
that the measured thing is throughput; the fixed cost has its own rows."""
FIXED_COST_IMAGES = 8
"""Images in the runs that show the fixed cost."""
IMAGES_PER_TAR = 40
"""Like write_sample's default (the release has ten much larger tars)."""
ROUNDS = 5
"""Per-round ratios on this shared machine swing by 20% or more: the median of 5 holds."""
QUIET_WAIT_S = 5.0
"""Before each run, wait at most this long for other processes to leave the CPUs."""
QUIET_CPUS = 0.3
"""The machine counts as quiet below this many CPUs busy (over half a second)."""
MEMORY_IMAGES = 500
"""N of item 4; the second run has 4N."""

MIN_TWO_WORKERS_VS_BARE = 1.6
MIN_ONE_WORKER_VS_BARE = 0.85
MIN_ONE_TAR_TWO_VS_ONE = 1.6
MAX_MEMORY_GROWTH = 1.25
MAX_PEAK_MB = 2000.0
MAX_ALL_FORMATS_VS_TFRECORDS = 1.10

BARE = "bare loop: read + transform_image, 1 CPU, no Beam"
ONE = "ingest, 1 worker (in_memory, pinned to 1 CPU)"
TWO = "ingest, 2 workers (multi_threading)"
TWO_PROCESSES = "ingest, 2 workers (multi_processing)"
CEILING = "ceiling: 2 bare loops in parallel, 1 CPU each"
ALL_FORMATS = "ingest, 2 workers (multi_threading), + WebDataset + Parquet shards"
_MB = 1e6


@attrs.frozen
class Inputs:
    """A written sample: its tars and label CSVs."""

    tars: tuple[Path, ...]
    csvs: tuple[Path, ...]
    images: int


@attrs.frozen
class Setup:
    """One way to run the ingestion.

    Attributes:
        label: Its row label.
        mode: ``--direct_running_mode``.
        workers: ``--direct_num_workers``.
        pinned: Whether to pin the whole run to one CPU.
        all_formats: Whether the WebDataset and Parquet shards are written too.
    """

    label: str
    mode: str
    workers: int
    pinned: bool
    all_formats: bool = False


ONE_WORKER = Setup(ONE, "in_memory", 1, pinned=True)
TWO_WORKERS = Setup(TWO, "multi_threading", 2, pinned=False)
"""The recommended local set-up: no worker processes to start, Pillow decodes without the GIL."""
TWO_PROCESSES_SETUP = Setup(TWO_PROCESSES, "multi_processing", 2, pinned=False)
"""A process per worker, as on Dataflow: its fixed cost is shown, and item 4 uses it."""
ALL_FORMATS_SETUP = Setup(ALL_FORMATS, "multi_threading", 2, pinned=False, all_formats=True)
"""`TWO_WORKERS` with the WebDataset and Parquet shards on too."""
SPEED_SETUPS = (ONE_WORKER, TWO_WORKERS)
FIXED_COST_SETUPS = (ONE_WORKER, TWO_WORKERS, TWO_PROCESSES_SETUP)


# Inputs.


def _pool(root: Path) -> list[bytes]:
    """The pool of full-size images, made once and kept under ``root``."""
    folder = root / "pool"
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    height, width = FULL_SIZE
    for index in range(POOL):
        path = folder / f"{index:03d}.jpg"
        if not path.exists():
            data = synthetic_cxr_jpeg(10_000 + index, height, width)
            path.with_suffix(".part").write_bytes(data)
            path.with_suffix(".part").rename(path)
        images.append(path.read_bytes())
    return images


def _write_tar(path: Path, members: Sequence[tuple[str, bytes]]) -> None:
    part = path.with_suffix(".part")
    with tarfile.open(part, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, _Bytes(data))
    part.rename(path)


class _Bytes:
    """A minimal readable file over bytes, for `tarfile.TarFile.addfile`."""

    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._at = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size < 0 else self._at + size
        chunk = bytes(self._view[self._at : end])
        self._at += len(chunk)
        return chunk


def full_size_sample(images: int, *, one_tar: bool = False) -> Inputs:
    """Writes (or finds) a sample of ``images`` full-size images.

    Paths and label CSVs come from ``write_sample(images=images, full_size=0,
    images_per_tar=IMAGES_PER_TAR)``; the member bytes are then replaced by
    pool images, cycled in member order. With ``one_tar``, the same members go
    into a single tar beside the sample, sharing its CSVs.

    The sample is kept under ``bench-output/ingest/inputs/`` and reused while
    its stamp matches; delete that folder to make it again (after a change to
    `write_sample`, for instance).

    Returns:
        The tars and CSVs to ingest.
    """
    root = OUTPUT / "inputs"
    folder = root / f"{images}-images-{IMAGES_PER_TAR}-per-tar-pool-{POOL}"
    stamp = folder / "_complete.json"
    made = {"images": images, "images_per_tar": IMAGES_PER_TAR, "pool": POOL, "version": 1}
    if not stamp.exists() or json.loads(stamp.read_text()) != made:
        shutil.rmtree(folder, ignore_errors=True)
        pool = _pool(root)
        sample = write_sample(folder, images=images, full_size=0, images_per_tar=IMAGES_PER_TAR)
        at = 0
        for tar_path in sample.tars:
            with tarfile.open(tar_path) as tar:
                names = [info.name for info in tar if info.isreg()]
            members = [(name, pool[(at + i) % POOL]) for i, name in enumerate(names)]
            at += len(names)
            tar_path.unlink()
            _write_tar(tar_path, members)
        shutil.rmtree(folder.with_name(folder.name + "-one-tar"), ignore_errors=True)
        stamp.write_text(json.dumps(made) + "\n")
    csvs = tuple(sorted(folder.glob("*.csv.gz")))
    tars = tuple(sorted(folder.glob("*.tar")))
    if not one_tar:
        return Inputs(tars, csvs, images)
    big = folder.with_name(folder.name + "-one-tar") / "all.tar"
    if not big.exists():
        big.parent.mkdir(parents=True, exist_ok=True)
        members = []
        for tar_path in tars:
            with tarfile.open(tar_path) as tar:
                for info in tar:
                    member = tar.extractfile(info)
                    if member is not None:
                        members.append((info.name, member.read()))
        _write_tar(big, members)
    return Inputs((big,), csvs, images)


# Runs.


def _cpu() -> int:
    return max(os.sched_getaffinity(0))


def _settle() -> float:
    """Waits (up to `QUIET_WAIT_S`) for the machine to be quiet; returns the busy CPUs seen.

    Other engineers' test runs share this machine: starting a run while they
    hold a CPU would measure them, not us.
    """
    deadline = time.monotonic() + QUIET_WAIT_S
    while True:
        before = machine_busy_s()
        time.sleep(0.5)
        busy = (machine_busy_s() - before) / 0.5
        if busy < QUIET_CPUS or time.monotonic() > deadline:
            return busy


def warm_cache(inputs: Inputs) -> None:
    """Reads every input once, so that the first run of round 1 does not read from disk."""
    for path in (*inputs.tars, *inputs.csvs):
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass


def run_bare(inputs: Inputs, log: Path, processes: int = 1) -> TreeRun:
    """The bare loop over ``inputs``: on one CPU, or split over ``processes`` CPUs."""
    command = [sys.executable, "-m", "bench._bare", "--processes", str(processes)]
    command.extend(map(str, inputs.tars))
    _settle()
    result = run_tree(command, log=log, cpus={_cpu()} if processes == 1 else None)
    lines = result.stdout.strip().splitlines()
    done = json.loads(lines[-1])["images"] if result.returncode == 0 and lines else 0
    if result.returncode != 0 or done != inputs.images:
        raise RuntimeError(f"bare loop: exit {result.returncode}, {done} images; see {log}")
    return result


def run_ingest(inputs: Inputs, setup: Setup, out: Path) -> TreeRun:
    """One ingestion of ``inputs``, every output on; checks every image was written.

    Every output: the JPG tree, the TFRecords and the DuckDB table; with
    ``setup.all_formats``, the WebDataset and Parquet shards too, each holding
    every image (the manifest's records per shard).
    """
    shutil.rmtree(out, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "datathon_etl.generated.mimic_cxr.ingest",
        "--input_tars",
        *map(str, inputs.tars),
        "--input_csv",
        *map(str, inputs.csvs),
        "--output_dir",
        str(out),
        "--output_jpg_dir",
        str(out / "jpg"),
        "--output_tfrecord_dir",
        str(out / "tfrecords"),
        "--direct_running_mode",
        setup.mode,
        "--direct_num_workers",
        str(setup.workers),
    ]
    if setup.all_formats:
        command += [
            "--output_webdataset_dir",
            str(out / "webdataset"),
            "--output_parquet_dir",
            str(out / "parquet"),
        ]
    log = out.with_name(out.name + ".log")
    _settle()
    result = run_tree(
        command,
        log=log,
        cpus={_cpu()} if setup.pinned else None,
        env={"TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    written, sharded = 0, [0]
    manifest = out / "_manifest.json"
    if manifest.exists():
        data = json.loads(manifest.read_text())
        written = data["stages"]["images"]["written"]
        shards = ("webdataset_shards", "parquet_shards") if setup.all_formats else ()
        sharded = [sum(data["parameters"][key].values()) - written for key in shards] or [0]
    if result.returncode != 0 or written != inputs.images or any(sharded):
        raise RuntimeError(
            f"{setup.label}: exit {result.returncode}, {written} of {inputs.images} images "
            f"written; see {log}"
        )
    shutil.rmtree(out, ignore_errors=True)
    return result


def _values(runs: Sequence[TreeRun], images: int) -> dict[str, float | str]:
    """Median figures of a method's runs (peak memory: the largest)."""
    return {
        "wall s": statistics.median(r.wall_s for r in runs),
        "wall img/s": statistics.median(images / r.wall_s for r in runs),
        "CPU s": statistics.median(r.cpu_s for r in runs),
        "cores busy": statistics.median(r.cpu_s / r.wall_s for r in runs),
        "others' cores": statistics.median(r.others_cores for r in runs),
        "peak tree RSS MB": max(r.peak_rss_bytes for r in runs) / _MB,
        "peak tree PSS MB": max(r.peak_pss_bytes for r in runs) / _MB,
    }


def _ratio(runs: Sequence[TreeRun], baseline: Sequence[TreeRun]) -> float:
    """Median over rounds of baseline wall time / runs' wall time (a speed ratio)."""
    return statistics.median(b.wall_s / r.wall_s for r, b in zip(runs, baseline, strict=True))


def _per_round(label: str, runs: Sequence[TreeRun], baseline: Sequence[TreeRun]) -> str:
    ratios = ", ".join(f"{b.wall_s / r.wall_s:.3f}" for r, b in zip(runs, baseline, strict=True))
    return f"per round, {label} x bare loop: {ratios}"


def _contention(runs: dict[str, list[TreeRun]]) -> str:
    others = [r.others_cores for method_runs in runs.values() for r in method_runs]
    return (
        f"other processes kept {statistics.median(others):.2f} CPUs busy during a run"
        f" (median; worst run {max(others):.2f}); each run waited up to {QUIET_WAIT_S:g} s"
        f" for fewer than {QUIET_CPUS:g} busy CPUs first"
    )


def _progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


_COMMON_NOTES = (
    "wall-clock of the whole run (process start to exit, start-up included);"
    " 'x ...' = median over rounds of the per-round ratio of wall times;"
    " CPU s = user + system of the whole process tree; cores busy = CPU s / wall s",
    f"memory: the process tree polled every {POLL_SECONDS} s; RSS summed (a page shared"
    " by processes counts in each: an upper bound) and PSS summed (shared pages split:"
    " the physical footprint)",
)


# Benches.


def bench_ingest() -> BenchResult:
    """Item 2: the ingestion with 1 and 2 workers against the bare single-CPU loop."""
    inputs = full_size_sample(SPEED_IMAGES)
    few = full_size_sample(FIXED_COST_IMAGES)
    work = OUTPUT / "runs"
    runs: dict[str, list[TreeRun]] = {BARE: [], CEILING: []}
    runs.update({setup.label: [] for setup in (*SPEED_SETUPS, ALL_FORMATS_SETUP)})
    warm_cache(inputs)
    for round_ in range(ROUNDS):
        runs[BARE].append(run_bare(inputs, work / "bare.log"))
        runs[CEILING].append(run_bare(inputs, work / "bare-2.log", processes=2))
        for setup in (*SPEED_SETUPS, ALL_FORMATS_SETUP):
            folder = f"{setup.mode}-all-formats" if setup.all_formats else setup.mode
            runs[setup.label].append(run_ingest(inputs, setup, work / folder))
        _progress(
            f"round {round_ + 1}/{ROUNDS}: "
            + ", ".join(f"{runs[k][-1].wall_s:.1f} s" for k in runs)
        )
    fixed = {
        setup.label: run_ingest(few, setup, work / f"{setup.mode}-few")
        for setup in FIXED_COST_SETUPS
    }
    fixed_bare = run_bare(few, work / "bare-few.log")

    rows = []
    for label, method_runs in runs.items():
        values = _values(method_runs, SPEED_IMAGES)
        values["x bare loop"] = _ratio(method_runs, runs[BARE])
        values["x bare loop CPU"] = statistics.median(
            b.cpu_s / r.cpu_s for r, b in zip(method_runs, runs[BARE], strict=True)
        )
        if label == ALL_FORMATS:
            values["x TFRecords only"] = _slowdown(method_runs, runs[TWO])
        rows.append(Row(label, values))
    for setup in FIXED_COST_SETUPS:
        run = fixed[setup.label]
        rows.append(
            Row(
                f"fixed cost: {setup.label.removeprefix('ingest, ')}, {FIXED_COST_IMAGES} images",
                {
                    "wall s": run.wall_s,
                    "CPU s": run.cpu_s,
                    "cores busy": run.cpu_s / run.wall_s,
                    "others' cores": run.others_cores,
                    "peak tree RSS MB": run.peak_rss_bytes / _MB,
                    "peak tree PSS MB": run.peak_pss_bytes / _MB,
                },
            )
        )
    sizes = [os.path.getsize(tar) for tar in inputs.tars]
    marginal = {
        label: _less_fixed(runs[BARE], fixed_bare, runs[label], fixed[label])
        for label in (ONE, TWO)
    }
    return BenchResult(
        name="ingest",
        rows=rows,
        targets=[
            Target(
                "2 workers vs bare single-CPU loop",
                _ratio(runs[TWO], runs[BARE]),
                MIN_TWO_WORKERS_VS_BARE,
                "x",
            ),
            Target(
                "1 worker vs bare single-CPU loop",
                _ratio(runs[ONE], runs[BARE]),
                MIN_ONE_WORKER_VS_BARE,
                "x",
            ),
            Target(
                "2 workers, + WebDataset + Parquet vs TFRecords only (wall time)",
                _slowdown(runs[ALL_FORMATS], runs[TWO]),
                MAX_ALL_FORMATS_VS_TFRECORDS,
                "x",
                at_most=True,
            ),
        ],
        notes=[
            f"inputs: {SPEED_IMAGES} full-size 2544x3056 q95 synthetic JPEGs (a pool of {POOL}"
            f" distinct images, cycled) in {len(inputs.tars)} uncompressed tars"
            f" ({sum(sizes) / _MB:.0f} MB), labels in {len(inputs.csvs)} gzipped CSVs;"
            " outputs: 320x320 q95 JPG tree + TFRecords + DuckDB labels table;"
            f" median of {ROUNDS} interleaved rounds",
            *_COMMON_NOTES,
            f"fixed cost: the same set-up on {FIXED_COST_IMAGES} images, one run (start-up,"
            " pipeline construction, workers' start, per-stage costs, shutdown)",
            *(_per_round(label, runs[label], runs[BARE]) for label in (CEILING, ONE, TWO)),
            "x TFRecords only = median over rounds of the run's wall time / the same round's"
            " 2-worker run with the TFRecords alone (both write the JPG tree and the table);"
            " per round: "
            + ", ".join(
                f"{r.wall_s / b.wall_s:.3f}"
                for r, b in zip(runs[ALL_FORMATS], runs[TWO], strict=True)
            ),
            f"with each side's fixed cost taken off (median wall time less its"
            f" {FIXED_COST_IMAGES}-image run; bare loop's: {fixed_bare.wall_s:.2f} s), the rate"
            f" a long run approaches: 1 worker {marginal[ONE]:.3f}x, 2 workers"
            f" {marginal[TWO]:.3f}x the bare loop (for information: the targets include it)",
            _contention(runs),
        ],
    )


def _slowdown(runs: Sequence[TreeRun], baseline: Sequence[TreeRun]) -> float:
    """Median over rounds of runs' wall time / baseline's (above 1: slower)."""
    return statistics.median(r.wall_s / b.wall_s for r, b in zip(runs, baseline, strict=True))


def _less_fixed(
    bare: Sequence[TreeRun], bare_few: TreeRun, runs: Sequence[TreeRun], few: TreeRun
) -> float:
    """Bare loop / set-up, each median wall time less its small run's: the marginal speed."""
    bare_s = statistics.median(r.wall_s for r in bare) - bare_few.wall_s
    return bare_s / (statistics.median(r.wall_s for r in runs) - few.wall_s)


def bench_ingest_one_tar() -> BenchResult:
    """Item 3: all images in one uncompressed tar, 2 workers against 1."""
    inputs = full_size_sample(SPEED_IMAGES, one_tar=True)
    work = OUTPUT / "runs"
    runs: dict[str, list[TreeRun]] = {setup.label: [] for setup in SPEED_SETUPS}
    warm_cache(inputs)
    for round_ in range(ROUNDS):
        for setup in SPEED_SETUPS:
            runs[setup.label].append(run_ingest(inputs, setup, work / f"{setup.mode}-one-tar"))
        _progress(
            f"round {round_ + 1}/{ROUNDS}: "
            + ", ".join(f"{runs[k][-1].wall_s:.1f} s" for k in runs)
        )
    rows = []
    for label, method_runs in runs.items():
        values = _values(method_runs, SPEED_IMAGES)
        values["x 1 worker"] = _ratio(method_runs, runs[ONE])
        rows.append(Row(f"one tar: {label}", values))
    size = os.path.getsize(inputs.tars[0])
    return BenchResult(
        name="ingest_one_tar",
        rows=rows,
        targets=[
            Target(
                "one tar: 2 workers vs 1",
                _ratio(runs[TWO], runs[ONE]),
                MIN_ONE_TAR_TWO_VS_ONE,
                "x",
            )
        ],
        notes=[
            f"inputs: the same {SPEED_IMAGES} images in one uncompressed tar"
            f" ({size / _MB:.0f} MB); median of {ROUNDS} interleaved rounds",
            _contention(runs),
        ],
    )


def bench_ingest_memory() -> BenchResult:
    """Item 4: peak memory of the 2-worker run at N and 4N images."""
    counts = (MEMORY_IMAGES, 4 * MEMORY_IMAGES)
    work = OUTPUT / "runs"
    runs = {}
    for count in counts:
        runs[count] = run_ingest(
            full_size_sample(count), TWO_PROCESSES_SETUP, work / f"memory-{count}"
        )
        _progress(f"{count} images: {runs[count].peak_rss_bytes / _MB:.0f} MB peak tree RSS")
    rows = []
    for count, run in runs.items():
        values = _values([run], count)
        values["largest process MB"] = run.largest_process_rss_bytes / _MB
        rows.append(Row(f"{TWO_PROCESSES}, {count} images", values))
    small, large = (runs[count] for count in counts)
    return BenchResult(
        name="ingest_memory",
        rows=rows,
        targets=[
            Target(
                f"peak tree RSS growth, {counts[1]} vs {counts[0]} images",
                large.peak_rss_bytes / small.peak_rss_bytes,
                MAX_MEMORY_GROWTH,
                "x",
                at_most=True,
            ),
            Target(
                f"peak tree RSS at {counts[1]} images",
                large.peak_rss_bytes / _MB,
                MAX_PEAK_MB,
                " MB",
                at_most=True,
            ),
        ],
        notes=[
            f"N = {counts[0]} full-size images (pool of {POOL}, cycled) in tars of"
            f" {IMAGES_PER_TAR}, 2 workers (multi_processing), every output on; one run each;"
            f" peak tree PSS: {small.peak_pss_bytes / _MB:.0f} MB at N,"
            f" {large.peak_pss_bytes / _MB:.0f} MB at 4N"
            f" ({large.peak_pss_bytes / small.peak_pss_bytes:.3f}x)",
            "largest process MB = the largest single process's RSS, peak over the same polls",
            _contention({str(count): [run] for count, run in runs.items()}),
        ],
    )
