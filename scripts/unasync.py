#!/usr/bin/env python
"""Generate meshclient's sync code from its async source (httpcore's `unasync` approach).

Each async module listed in `FILES` is the one hand-written copy; its sync twin is made
from it by the textual substitutions in `SUBS` (whole words, in order) and checked in.
Edit the async module, then run `python scripts/unasync.py`; `--check` changes nothing
and exits 1 when a checked-in sync module differs from what would be generated (CI and
`tests/unit/test_unasync.py` run it).
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: (async source, generated sync module), relative to the repository root.
FILES = [("meshclient/transport/_async.py", "meshclient/transport/_sync.py")]

#: (pattern, replacement): regular expressions, applied in this order to each line.
SUBS = [
    (r"\basync def\b", "def"),
    (r"\basync with\b", "with"),
    (r"\basync for\b", "for"),
    (r"\bawait ", ""),
    (r"\bAsyncMeshTransport\b", "MeshTransport"),
    (r"\bhttpx\.AsyncBaseTransport\b", "httpx.BaseTransport"),
    (r"\bhttpx\.AsyncHTTPTransport\b", "httpx.HTTPTransport"),
    (r"\bhttpx\.AsyncClient\b", "httpx.Client"),
    (r"\bhandle_async_request\b", "handle_request"),
    (r"\baclose\b", "close"),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\b_io_async\b", "_io_sync"),
    (r"\b(track|watch|admit|attach|send|check)_async\b", r"\1_sync"),
    (r"\bawaiting\b", "blocking"),
]

HEADER = ("# GENERATED from {source} by scripts/unasync.py: do not edit; edit the async\n"
          "# source and run `python scripts/unasync.py`.\n")
#: In a generated module, the source's lines between these markers (which say it is the
#: source) are left out.
SOURCE_ONLY = ("# unasync: source only\n", "# unasync: end\n")


def unasync(text: str, source: str) -> str:
    """The sync module for the async module `text` (read from `source`)."""
    out = [HEADER.format(source=source)]
    skipping = False
    compiled = [(re.compile(pattern), repl) for pattern, repl in SUBS]
    for line in text.splitlines(keepends=True):
        if line.strip() + "\n" == SOURCE_ONLY[0]:
            skipping = True
            continue
        if skipping:
            skipping = line.strip() + "\n" != SOURCE_ONLY[1]
            continue
        for pattern, repl in compiled:
            line = pattern.sub(repl, line)
        out.append(line)
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 when a sync module is out of date")
    args = parser.parse_args(argv)
    stale = []
    for source, target in FILES:
        wanted = unasync((ROOT / source).read_text(encoding="utf-8"), source)
        path = ROOT / target
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current == wanted:
            continue
        if args.check:
            stale.append(target)
            sys.stdout.writelines(difflib.unified_diff(
                current.splitlines(keepends=True), wanted.splitlines(keepends=True),
                target, f"{target} (generated)"))
        else:
            path.write_text(wanted, encoding="utf-8")
            print(f"wrote {target}")
    if stale:
        print(f"out of date: {', '.join(stale)} (run `python scripts/unasync.py`)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
