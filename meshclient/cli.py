"""The `meshclient` command line (also `python -m meshclient`).

Each subcommand lives in `meshclient/_cli/<name>.py` and exposes `add_parser(subparsers)`,
which registers itself with `set_defaults(run=...)`; `run(args) -> int` is the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: Subcommand modules, in the order `--help` lists them.
COMMANDS = ("check", "resolve", "status", "demo", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meshclient",
                                     description="The service mesh as a Python library.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"meshclient._cli.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "run", None) is None:
        parser.print_help()
        return 2
    code: int = args.run(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
