"""The `datathon-etl` umbrella command: lists and dispatches subcommands.

Each subcommand is a module with ``main(argv) -> int``, imported only when it
runs, so ``datathon-etl --help`` stays fast.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

__all__ = ["COMMANDS", "main"]

COMMANDS: dict[str, tuple[str, str]] = {
    "codegen": ("datathon_etl.codegen.__main__", "generate schemas and code from datasets"),
}
"""Subcommand -> (module with main(argv), one-line help)."""


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: datathon-etl COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in sorted(COMMANDS.items())]
    lines += ["", "`datathon-etl COMMAND --help` describes each command."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``datathon-etl COMMAND ARGS...``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"datathon-etl: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    code: int = module.main(rest)
    return code


if __name__ == "__main__":
    sys.exit(main())
