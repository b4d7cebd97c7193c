"""Loads dataset modules, writes their generated files, or checks them."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable
from pathlib import Path

import attrs

from datathon_etl.codegen.render import BUILTIN_PACKAGE, render_dataset
from datathon_etl.framework.schema import Dataset, DatasetIR, read_dataset
from datathon_etl.framework.schema.layout import check_layout

__all__ = [
    "BUILTIN_PACKAGE",
    "CheckResult",
    "check",
    "load_dataset_ir",
    "render_all",
    "render_irs",
    "write",
]
_IGNORED = {"__pycache__"}


def load_dataset_ir(module: str) -> DatasetIR:
    """Imports a dataset module by import path and reads its ``DATASET``.

    Raises:
        ValueError: The module exports no `Dataset` named ``DATASET``, or
            its layout module does not follow its protocol (`check_layout`).
    """
    dataset = getattr(importlib.import_module(module), "DATASET", None)
    if not isinstance(dataset, Dataset):
        raise ValueError(f"{module}: exports no DATASET = Dataset(...)")
    ir = read_dataset(dataset, module)
    if ir.layout is not None:
        # A missing piece is named now, not met as an AttributeError mid-run.
        check_layout(ir)
    return ir


def render_all(modules: Iterable[str], package: str = BUILTIN_PACKAGE) -> dict[Path, str]:
    """Renders every dataset; keys are paths relative to the output root.

    Args:
        modules: The declaration modules' import paths.
        package: The output root's import path.
    """
    return render_irs([load_dataset_ir(module) for module in modules], package)


def render_irs(irs: Iterable[DatasetIR], package: str) -> dict[Path, str]:
    """Renders every dataset read; see `render_all`."""
    files: dict[Path, str] = {}
    for ir in irs:
        for name, content in render_dataset(ir, f"{package}.{ir.name}").items():
            files[Path(ir.name) / name] = content
    return files


def write(files: dict[Path, str], out: Path) -> list[Path]:
    """Writes the rendered files that changed; returns those it wrote."""
    written = []
    for relative, content in files.items():
        target = out / relative
        if target.exists() and target.read_text(encoding="utf-8") == content:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        written.append(relative)
    return written


@attrs.frozen
class CheckResult:
    """What differs between the rendered files and those on disk."""

    stale: tuple[str, ...]
    missing: tuple[Path, ...]
    orphaned: tuple[Path, ...]

    @property
    def ok(self) -> bool:
        """Whether the files on disk are exactly the rendered ones."""
        return not (self.stale or self.missing or self.orphaned)

    def report(self) -> str:
        """Returns the unified diffs and the lists of missing and orphaned files."""
        lines = list(self.stale)
        lines += [f"missing: {p} (run `datathon-etl codegen`)\n" for p in self.missing]
        lines += [
            f"orphaned: {p} (not generated from any dataset; delete it)\n" for p in self.orphaned
        ]
        return "".join(lines)


def check(files: dict[Path, str], out: Path, *, owns_root: bool) -> CheckResult:
    """Compares rendered files with those under ``out`` without writing.

    Args:
        files: Rendered files, relative to ``out``.
        out: The output root (``generated/``).
        owns_root: Whether every dataset folder under ``out`` should come
            from ``files`` (true when checking all built-in datasets), so
            folders of removed datasets count as orphaned.

    Returns:
        The stale files (as unified diffs), missing and orphaned files.
    """
    stale, missing = [], []
    for relative, content in files.items():
        target = out / relative
        if not target.exists():
            missing.append(relative)
            continue
        current = target.read_text(encoding="utf-8")
        if current != content:
            stale.append(
                "".join(
                    difflib.unified_diff(
                        current.splitlines(keepends=True),
                        content.splitlines(keepends=True),
                        f"{relative} (on disk)",
                        f"{relative} (generated)",
                    )
                )
            )
    folders = {relative.parts[0] for relative in files}
    if owns_root and out.exists():
        folders |= {p.name for p in out.iterdir() if p.is_dir() and p.name not in _IGNORED}
    orphaned = [
        path.relative_to(out)
        for folder in sorted(folders)
        for path in sorted((out / folder).rglob("*"))
        if path.is_file()
        and not _IGNORED.intersection(path.parts)
        and path.relative_to(out) not in files
    ]
    return CheckResult(tuple(stale), tuple(missing), tuple(orphaned))
