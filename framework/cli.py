"""The `datathon-etl` umbrella command: lists and dispatches subcommands.

Generic commands are modules with ``main(argv) -> int``; dataset commands are
the modules codegen wrote for a data set (``ingest``, ``infer``,
``evaluate``, each with ``main(argv) -> int``), found in one package per
data set: ``datathon_etl.generated.<dataset>`` for the built-in ones
(``datathon-etl mimic_cxr ingest`` runs ``generated/mimic_cxr/ingest.py``),
and for a data set of another installed package, the package its entry point
in the `DATASETS_GROUP` group names::

    [project.entry-points."datathon_etl.datasets"]
    nih_cxr14 = "myorg.generated.nih_cxr14"

A built-in command or data set keeps its name: an entry point that takes one
is listed as ignored. Modules are imported only when their command runs
(a data set's package, to list its commands), so ``--help`` stays fast.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
import threading
from collections.abc import Sequence
from importlib import resources
from typing import NoReturn

__all__ = [
    "COMMANDS",
    "DATASETS_GROUP",
    "DATASET_COMMANDS",
    "entry_point",
    "exit_process",
    "main",
    "version",
]

COMMANDS: dict[str, tuple[str, str]] = {
    "codegen": (
        "datathon_etl.codegen.__main__",
        "generate schemas and code from dataset declarations",
    ),
    "untar": ("datathon_etl.framework.pipelines.untar", "extract tar archives (local or gs://)"),
    "images-to-tfrecord": (
        "datathon_etl.framework.pipelines.images_to_tfrecord",
        "images + SQL labels -> resized, sharded TFRecords",
    ),
    "decompress": (
        "datathon_etl.framework.pipelines.decompress",
        "decompress gzip/bzip2/xz/zstd/deflate files",
    ),
    "card": (
        "datathon_etl.framework.card.command",
        "a data set's ingestion -> its data card, one self-contained HTML page",
    ),
}
"""Generic subcommand -> (module with main(argv), one-line help)."""

DATASET_COMMANDS: dict[str, str] = {
    "ingest": "tars of images + label CSVs -> JPG tree, TFRecords, labels table",
    "infer": "TFRecords + a model (Keras, SavedModel, ONNX) -> predictions table (batched)",
    "evaluate": "teams' predictions + labels -> leaderboard, AUROC with bootstrap intervals",
}
"""Per-dataset subcommand -> one-line help; each is a generated module."""

DATASETS_GROUP = "datathon_etl.datasets"
"""The entry-point group of data sets in other packages: name -> their generated package."""


def version() -> str:
    """The installed package's version."""
    return importlib.metadata.version("datathon-etl")


def _datasets() -> tuple[dict[str, str], list[str]]:
    """Returns (data set name -> its generated package, entry points ignored, as lines).

    Built-in data sets are found by listing ``datathon_etl.generated``,
    without importing anything; the others by their entry points.
    """
    found: dict[str, str] = {}
    for folder in sorted(resources.files("datathon_etl.generated").iterdir(), key=str):
        if any(folder.joinpath(f"{c}.py").is_file() for c in DATASET_COMMANDS):
            found[folder.name] = f"datathon_etl.generated.{folder.name}"
    ignored = []
    for entry in sorted(importlib.metadata.entry_points(group=DATASETS_GROUP), key=str):
        if entry.name in COMMANDS or entry.name in found:
            ignored.append(f"{entry.name} = {entry.value!r} ({DATASETS_GROUP}): the name is taken")
        else:
            found[entry.name] = entry.value
    return found, ignored


def _subcommands(dataset: str, package: str) -> list[str]:
    """The dataset commands ``package`` holds.

    Raises:
        LookupError: The package cannot be imported (what to do, in one line).
    """
    try:
        return [c for c in DATASET_COMMANDS if importlib.util.find_spec(f"{package}.{c}")]
    except (ImportError, ValueError) as e:
        raise LookupError(
            f"{dataset}: cannot import {package!r}, its package ({type(e).__name__}: {e}); "
            "install the package that declares it, or run `datathon-etl codegen` for it"
        ) from e


def _usage() -> str:
    lines = ["usage: datathon-etl COMMAND [ARGS...]", "", "commands:"]
    width = max(len(name) for name in COMMANDS)
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in sorted(COMMANDS.items())]
    lines += ["", "datasets (datathon-etl DATASET COMMAND [ARGS...]):"]
    datasets, ignored = _datasets()
    for dataset, package in datasets.items():
        try:
            subcommands = _subcommands(dataset, package)
        except LookupError as e:
            lines.append(f"  {e}")
            continue
        lines += [f"  {dataset} {sub}: {DATASET_COMMANDS[sub]}" for sub in subcommands]
    lines += [f"  ignored: {line}" for line in ignored]
    lines += ["", "`datathon-etl COMMAND --help` describes each command; --version."]
    return "\n".join(lines)


def _dataset_usage(dataset: str, subcommands: Sequence[str]) -> str:
    lines = [f"usage: datathon-etl {dataset} COMMAND [ARGS...]", "", "commands:"]
    width = max(len(sub) for sub in subcommands)
    lines += [f"  {sub:<{width}}  {DATASET_COMMANDS[sub]}" for sub in subcommands]
    lines += ["", f"`datathon-etl {dataset} COMMAND --help` describes each command."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``datathon-etl COMMAND ARGS...``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if args[0] == "--version":
        print(f"datathon-etl {version()}")
        return 0
    if args[0] in COMMANDS:
        return _run(COMMANDS[args[0]][0], args[1:])
    dataset = args[0]
    package = _datasets()[0].get(dataset)
    if package is None:
        return _refuse(f"unknown command {dataset!r}")
    try:
        subcommands = _subcommands(dataset, package)
    except LookupError as e:
        return _refuse(str(e))
    if args[1:2] == ["--version"]:
        print(f"datathon-etl {version()}")
        return 0
    if args[1:2] in (["-h"], ["--help"]):
        print(_dataset_usage(dataset, subcommands))
        return 0
    if args[1:2] == [] or args[1] not in subcommands:
        wanted = args[1] if len(args) > 1 else "(none)"
        return _refuse(
            f"{dataset}: unknown subcommand {wanted}; choose from {', '.join(subcommands)}"
        )
    return _run(f"{package}.{args[1]}", args[2:])


def _refuse(message: str) -> int:
    print(f"datathon-etl: {message}\n\n{_usage()}", file=sys.stderr)
    return 2


def _run(module_name: str, args: list[str]) -> int:
    # TensorFlow's C++ start-up chatter hides the pipelines' own output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    module = importlib.import_module(module_name)
    code: int = module.main(args)
    return code


def exit_process(code: int) -> NoReturn:
    """Ends a command's process with ``code``, skipping the interpreter's teardown.

    Tearing down every module Beam imports takes about half a second on each
    run. Exit handlers still run and output is flushed first; with another
    non-daemon thread still running, this is a plain `sys.exit`.
    """
    if any(
        t.is_alive() and not t.daemon
        for t in threading.enumerate()
        if t is not threading.main_thread()
    ):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed, or its reader went away
            stream.flush()
    os._exit(code)


def entry_point() -> NoReturn:
    """The ``datathon-etl`` console script."""
    exit_process(main())


if __name__ == "__main__":
    entry_point()
