"""The command line shared by the generators of documentation pages (docgen, commands, metricsdoc).

Each generator turns part of the code into one Markdown page; ``--check`` only says whether the
committed page is what it would write now (exit 1 if stale), which is what the tests ask.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def main(argv: list[str] | None, *, command: str, what: str, default: Path, generate: Callable[[], str]) -> int:
    """Write ``generate()`` to ``--output`` (default ``default``), or with ``--check`` compare it."""
    parser = argparse.ArgumentParser(prog=command, description=f"Rebuild {what} from the code.")
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if the page is stale")
    parser.add_argument("--output", type=Path, default=default, help=f"the page to write (default: {default})")
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.is_file() else None
        if current != text:
            print(f"{args.output}: {what} is stale: run `{command}`", file=sys.stderr)
            return 1
        print(f"{args.output}: {what} is up to date")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0
