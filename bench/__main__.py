"""Runs the benches and prints one table: ``python -m bench [NAME ...]``.

To add a bench, append its function to `BENCHES`.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import dicom, ingest, scale, transform
from bench._core import BenchResult
from bench.inference import bench_inference

BENCHES: list[Callable[[], BenchResult]] = [
    transform.bench_transform,
    dicom.bench_dicom,
    ingest.bench_ingest,
    ingest.bench_ingest_one_tar,
    ingest.bench_ingest_memory,
    bench_inference,
    scale.bench_scale,
]
"""Every bench, in the order they run; a bench's name is its function's name
without the ``bench_`` prefix."""


def bench_name(bench: Callable[[], BenchResult]) -> str:
    """The name a bench is selected by on the command line."""
    return bench.__name__.removeprefix("bench_")


def format_table(results: Sequence[BenchResult]) -> str:
    """Formats all results as one Markdown table, then the targets and notes."""
    columns: list[str] = []
    for result in results:
        for row in result.rows:
            columns.extend(name for name in row.values if name not in columns)
    header = ["bench", "method", *columns]
    lines = [header]
    for result in results:
        for row in result.rows:
            lines.append(
                [result.name, row.label, *(_cell(row.values.get(name, "")) for name in columns)]
            )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "| "
        + " | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        + " |"
        for line in lines
    ]
    text.insert(1, "| " + " | ".join("-" * width for width in widths) + " |")
    for result in results:
        for target in result.targets:
            verdict = "met" if target.met else "NOT MET"
            text.append(
                f"{result.name}: {target.name}: {target.measured:.3f}{target.unit}"
                f" (target {target.comparison} {target.threshold:g}{target.unit}): {verdict}"
            )
        text.extend(f"{result.name}: {note}" for note in result.notes)
    return "\n".join(text)


def _cell(value: float | str) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the selected benches; returns 1 with --strict if a target is not met."""
    names = [bench_name(bench) for bench in BENCHES]
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"benches to run: {names}")
    parser.add_argument("--output", type=Path, default=Path("bench-output"))
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is not met")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(names))
    if unknown:
        parser.error(f"unknown bench(es) {unknown}; known: {names}")
    results = []
    for bench in BENCHES:
        if args.names and bench_name(bench) not in args.names:
            continue
        print(f"running {bench_name(bench)} ...", file=sys.stderr, flush=True)
        start = time.monotonic()
        results.append(bench())
        elapsed = time.monotonic() - start
        print(f"{bench_name(bench)} took {elapsed:.0f} s", file=sys.stderr, flush=True)
    print(format_table(results))
    args.output.mkdir(parents=True, exist_ok=True)
    report = {
        "benches": [result.to_dict() for result in results],
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
    }
    path = args.output / "results.json"
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    missed = [target for result in results for target in result.targets if not target.met]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
