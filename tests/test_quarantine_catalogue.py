"""The README's catalogue of quarantine reasons is the code's, and its count is true."""

from __future__ import annotations

import re
from pathlib import Path

from datathon_etl.framework.quarantine import Reason

README = Path(__file__).parent.parent / "README.md"


def _section(text: str) -> str:
    start = text.index("## What happens to bad data")
    return text[start : text.index("\n## ", start + 1)]


def test_the_readme_lists_every_reason_once_and_counts_them() -> None:
    """Each `Reason` is in the catalogue table once; both counts in the text match."""
    section = _section(README.read_text())
    table = [line for line in section.splitlines() if line.startswith("| ") and "`" in line]
    listed = [code for line in table for code in re.findall(r"`([a-z_]+)`", line)]
    assert sorted(listed) == sorted(r.value for r in Reason)
    counts = re.findall(r"The (\d+) reasons|one of the (\d+) below", section)
    assert [int(a or b) for a, b in counts] == [len(Reason), len(Reason)]
