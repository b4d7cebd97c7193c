"""`python -m datathon_etl.codegen` (also `datathon-etl codegen`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import datathon_etl.generated
from datathon_etl.codegen.generate import (
    BUILTIN_PACKAGE,
    check,
    load_dataset_ir,
    render_irs,
    write,
)
from datathon_etl.datasets import BUILTIN

DEFAULT_OUT = Path(datathon_etl.generated.__path__[0])


def package_of(out: Path) -> str | None:
    """The import path ``out`` has as a package, found on ``sys.path`` (None: not on it)."""
    target = out.resolve()
    for entry in sys.path:
        root = Path(entry or ".").resolve()
        if target != root and target.is_relative_to(root):
            parts = target.relative_to(root).parts
            if all(part.isidentifier() for part in parts):
                return ".".join(parts)
    return None


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
        help="dataset modules by import path (from the current folder too), each exporting "
        f"DATASET (default: the built-in ones: {', '.join(BUILTIN)})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output root; each dataset goes to OUT/<name>/ (default: the datathon_etl.generated "
        "package for built-in datasets; required for your own modules: a folder of your "
        "package, under the current folder or on sys.path, whose import path the data "
        "dictionary names for the datathon_etl.datasets entry point)",
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
    # As `python -m` does: a declaration in the current folder imports without PYTHONPATH.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        irs = [load_dataset_ir(module) for module in modules]
    except (ImportError, ValueError) as error:
        print(f"datathon-etl codegen: {error}", file=sys.stderr)
        return 2
    # The built-in data sets' files belong in datathon_etl.generated, wherever written.
    package = BUILTIN_PACKAGE if set(modules) <= set(BUILTIN) else package_of(out)
    if package is None:
        print(
            f"datathon-etl codegen: --out {out} is neither under the current folder nor on "
            "sys.path, so its modules could not be imported; write it inside your package",
            file=sys.stderr,
        )
        return 2
    files = render_irs(irs, package)
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
