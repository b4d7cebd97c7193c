"""The bare loop: every image of some tars through `transform_image`, one process, no Beam.

``python -m bench._bare TAR [TAR ...]`` reads each tar in turn (streamed, in
member order), transforms every ``.jpg`` member to 320x320 with the
ingestion's default `ImageSpec`, and prints one JSON line: images done and
the seconds the loop took. Nothing is written: this is the physical work the
ingestion does per image (read + decode + resize + encode), the yardstick the
end-to-end runs are compared with. Pin it to one CPU from outside (the bench
does) to make it the single-core figure.
"""

from __future__ import annotations

import json
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


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the loop over the tars given as arguments; prints images and seconds."""
    tars = list(sys.argv[1:] if argv is None else argv)
    start = time.perf_counter()
    done = bare_loop(tars)
    print(json.dumps({"images": done, "seconds": time.perf_counter() - start}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
