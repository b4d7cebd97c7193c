"""`python -m datathon_etl.codegen` (also `datathon-etl codegen`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import datathon_etl.generated
from datathon_etl.codegen.generate import check, render_all, write
from datathon_etl.datasets import BUILTIN

DEFAULT_OUT = Path(datathon_etl.generated.__path__[0])


def main(argv: Sequence[str] | None = None) -> int:
    """Renders (or checks) the generated files of the given dataset modules."""
    parser = argparse.ArgumentParser(
        prog="datathon-etl codegen",
        description="Generate schemas, TFRecord specs, row mappers and docs from dataset "
        "declarations.",
    )
    parser.add_argument(
        "modules",
        nargs="*",
        help="dataset modules by import path, each exporting DATASET "
        f"(default: the built-in ones: {', '.join(BUILTIN)})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output root; each dataset goes to OUT/<name>/ (default: the datathon_etl.generated "
        "package for built-in datasets; required for your own modules)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="render in memory, print a diff of stale files, list missing and orphaned ones, "
        "and exit 1 if anything differs",
    )
    args = parser.parse_args(argv)
    modules = args.modules or list(BUILTIN)
    if args.out is None and not set(modules) <= set(BUILTIN):
        parser.error("--out is required for dataset modules outside datathon_etl")
    out = args.out or DEFAULT_OUT
    try:
        files = render_all(modules)
    except (ImportError, ValueError) as error:
        print(f"datathon-etl codegen: {error}", file=sys.stderr)
        return 2
    if args.check:
        result = check(files, out, owns_root=not args.modules)
        if result.ok:
            print(f"codegen check: {len(files)} generated files are current")
            return 0
        sys.stdout.write(result.report())
        print("codegen check failed: run `datathon-etl codegen` and commit the result")
        return 1
    written = write(files, out)
    for relative in written:
        print(f"wrote {out / relative}")
    print(f"{len(files)} files generated, {len(written)} changed, under {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
