"""`python -m benchmarks [name ...] [--flags]`: run the named benchmark modules in turn
(default: every known one present on this checkout; the modules other work adds are found by
import spec, and missing ones are skipped). Each runs as `python -m benchmarks.<name>`, its
documented command, in its own process, with the flags passed on (e.g. `--quick`)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

#: Benchmark modules, in the order they run by default.
KNOWN = ("overhead", "essential", "balance", "scale", "retry", "mirror", "tracing", "control",
         "discovery_warm", "security_overhead", "xds", "access_log", "imports", "sidecar")
ROOT = Path(__file__).resolve().parent.parent


def exists(name: str) -> bool:
    return importlib.util.find_spec(f"benchmarks.{name}") is not None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    flags = [a for a in args if a.startswith("-")]
    named = [a for a in args if not a.startswith("-")]
    failed = []
    for name in named or list(KNOWN):
        if not exists(name):
            if named:
                print(f"benchmarks.{name}: no such benchmark", file=sys.stderr)
                failed.append(name)
            else:
                print(f"== {name}: not on this checkout, skipped")
            continue
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", f"benchmarks.{name}", *flags], cwd=ROOT)
        print(f"== {name}: exit {code} in {time.perf_counter() - started:.1f}s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
