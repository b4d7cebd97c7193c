"""The `datathon-etl` umbrella command: lists and dispatches subcommands.

Generic commands are modules with ``main(argv) -> int``; dataset commands are
the entry points codegen wrote into ``datathon_etl.generated.<dataset>``
(``datathon-etl mimic_cxr ingest`` runs ``generated/mimic_cxr/ingest.py``).
Modules are imported only when their command runs, so ``--help`` stays fast.
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

__all__ = ["COMMANDS", "DATASET_COMMANDS", "entry_point", "exit_process", "main", "version"]

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


def version() -> str:
    """The installed package's version."""
    return importlib.metadata.version("datathon-etl")


def _datasets() -> dict[str, list[str]]:
    """Dataset name -> its generated subcommands, found without importing them."""
    found: dict[str, list[str]] = {}
    for folder in sorted(resources.files("datathon_etl.generated").iterdir(), key=str):
        subcommands = [c for c in DATASET_COMMANDS if folder.joinpath(f"{c}.py").is_file()]
        if subcommands:
            found[folder.name] = subcommands
    return found


def _usage() -> str:
    lines = ["usage: datathon-etl COMMAND [ARGS...]", "", "commands:"]
    width = max(len(name) for name in COMMANDS)
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in sorted(COMMANDS.items())]
    lines += ["", "datasets (datathon-etl DATASET COMMAND [ARGS...]):"]
    for dataset, subcommands in _datasets().items():
        for sub in subcommands:
            lines.append(f"  {dataset} {sub}: {DATASET_COMMANDS[sub]}")
    lines += ["", "`datathon-etl COMMAND --help` describes each command; --version."]
    return "\n".join(lines)


def _dataset_usage(dataset: str, subcommands: Sequence[str]) -> str:
    lines = [f"usage: datathon-etl {dataset} COMMAND [ARGS...]", "", "commands:"]
    width = max(len(sub) for sub in subcommands)
    lines += [f"  {sub:<{width}}  {DATASET_COMMANDS[sub]}" for sub in subcommands]
    lines += ["", f"`datathon-etl {dataset} COMMAND --help` describes each command."]
    return "\n".join(lines)


def _resolve(args: list[str]) -> tuple[str, list[str]] | str:
    """Returns (module, remaining args), or an error message."""
    name = args[0]
    if name in COMMANDS:
        return COMMANDS[name][0], args[1:]
    datasets = _datasets()
    if name in datasets:
        if len(args) < 2 or args[1] not in datasets[name]:
            wanted = args[1] if len(args) > 1 else "(none)"
            return f"{name}: unknown subcommand {wanted}; choose from {', '.join(datasets[name])}"
        module = f"datathon_etl.generated.{name}.{args[1]}"
        if importlib.util.find_spec(module) is None:
            return f"{name} {args[1]}: {module} is missing; run `datathon-etl codegen`"
        return module, args[2:]
    return f"unknown command {name!r}"


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``datathon-etl COMMAND ARGS...``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0
    datasets = _datasets()
    if "--version" in args[: 2 if args[0] in datasets else 1]:
        print(f"datathon-etl {version()}")
        return 0
    if args[0] in datasets and args[1:2] in (["-h"], ["--help"]):
        print(_dataset_usage(args[0], datasets[args[0]]))
        return 0
    resolved = _resolve(args)
    if isinstance(resolved, str):
        print(f"datathon-etl: {resolved}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, rest = resolved
    # TensorFlow's C++ start-up chatter hides the pipelines' own output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    module = importlib.import_module(module_name)
    code: int = module.main(rest)
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
