"""The `meshclient` command line (also `python -m meshclient`).

Each subcommand lives in `meshclient/_cli/<name>.py` and exposes `add_parser(subparsers)`,
which registers itself with `set_defaults(run=...)`; `run(args) -> int` is the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

#: Exit status when the reader of stdout went away (`meshclient check f.toml | head`):
#: 128 + SIGPIPE, what coreutils and git report when a pipe closes under them.
EXIT_BROKEN_PIPE = 141

#: Subcommand modules, in the order `--help` lists them.
COMMANDS = ("check", "resolve", "status", "demo", "bench")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="meshclient",
                                     description="The service mesh as a Python library.")
    parser.add_argument("--version", action="version", version=f"meshclient {__version__}")
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
    try:
        code: int = args.run(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's shutdown
    except BrokenPipeError:
        # The reader left (`| head`, `| true`): stop quietly, as command-line tools do.
        # Point stdout at /dev/null so the interpreter's final flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
