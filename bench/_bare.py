"""The bare loop: every image of some tars through `transform_image`, no Beam.

``python -m bench._bare TAR [TAR ...]`` reads each tar in turn (streamed, in
member order), transforms every ``.jpg`` member to 320x320 with the
ingestion's default `ImageSpec`, and prints one JSON line: images done and
the seconds the loop took. Nothing is written: this is the physical work the
ingestion does per image (read + decode + resize + encode), the yardstick the
end-to-end runs are compared with. Pin it to one CPU from outside (the bench
does) to make it the single-core figure.

``--processes K`` splits the tars round-robin over K child processes, each
pinned to its own CPU: what the machine can do in parallel at best, with no
coordination at all (the ceiling for K workers).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Sequence

from datathon_etl.framework.images import ImageSpec, transform_image

__all__ = ["SPEC", "bare_loop", "main"]

SPEC = ImageSpec(height=320, width=320)
"""What the ingestion's image flags default to."""


def bare_loop(tars: Sequence[str]) -> int:
    """Transforms every JPEG member of ``tars``; returns how many."""
    done = 0
    for path in tars:
        with tarfile.open(path, mode="r:") as tar:
            for info in tar:
                if not (info.isreg() and info.name.endswith(".jpg")):
                    continue
                member = tar.extractfile(info)
                assert member is not None
                transform_image(member.read(), SPEC)
                done += 1
    return done


def _in_parallel(tars: Sequence[str], processes: int) -> int:
    """Runs the loop in ``processes`` children, one CPU each; returns images done."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < processes:
        raise SystemExit(f"--processes {processes}: only {len(cpus)} CPU(s) allowed")
    children = []
    for index in range(processes):
        command = [sys.executable, "-m", "bench._bare", *tars[index::processes]]
        child = subprocess.Popen(command, stdout=subprocess.PIPE)
        os.sched_setaffinity(child.pid, {cpus[index]})
        children.append(child)
    done = 0
    for child in children:
        out, _ = child.communicate()
        if child.returncode != 0:
            raise SystemExit(f"a child loop failed with exit status {child.returncode}")
        done += json.loads(out)["images"]
    return done


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the loop over the tars given as arguments; prints images and seconds."""
    parser = argparse.ArgumentParser(prog="python -m bench._bare", description=__doc__)
    parser.add_argument("tars", nargs="+", help="uncompressed tars of JPEGs")
    parser.add_argument("--processes", type=int, default=1, help="child processes, 1 CPU each")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    parallel = args.processes > 1
    done = _in_parallel(args.tars, args.processes) if parallel else bare_loop(args.tars)
    print(json.dumps({"images": done, "seconds": time.perf_counter() - start}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
