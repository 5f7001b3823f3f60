"""Import time: `import meshclient` against `import httpx`, side by side in one run.

    python -m benchmarks.imports            # 9 fresh interpreters per module, interleaved
    python -m benchmarks.imports --quick    # 3 each

Each sample is a fresh interpreter timing its own import with `time.perf_counter` (the
interpreter's start-up is not counted), alternating between the two modules so drift on a
loaded machine hits both alike. The ratio of the medians is the figure.

Target: `import meshclient` takes at most 1.5x as long as `import httpx`. The transports,
the policy model and their dependencies (tenacity, pybreaker, opentelemetry, dnspython)
load on first use of a name, not at import.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.5
_PROBE = ("import time; t = time.perf_counter(); import {module}; "
          "print(time.perf_counter() - t)")


def sample(module: str) -> float:
    """Seconds one fresh interpreter takes to import `module`."""
    out = subprocess.run([sys.executable, "-c", _PROBE.format(module=module)], cwd=ROOT,
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return float(out.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="fresh interpreters per module")
    parser.add_argument("--quick", action="store_true", help="3 runs per module")
    args = parser.parse_args(argv)
    runs = 3 if args.quick else args.runs
    times: dict[str, list[float]] = {"httpx": [], "meshclient": []}
    for i in range(runs):
        order = ["httpx", "meshclient"] if i % 2 == 0 else ["meshclient", "httpx"]
        for module in order:
            times[module].append(sample(module))
    medians = {m: statistics.median(t) for m, t in times.items()}
    ratio = medians["meshclient"] / medians["httpx"]
    print(f"imports: median of {runs} fresh interpreters each")
    for module, median in medians.items():
        print(f"  import {module:<10} {median * 1000:7.1f} ms")
    verdict = "meets" if ratio <= TARGET else "MISSES"
    print(f"ratio {ratio:.2f} {verdict} the target (import meshclient <= {TARGET} x import httpx)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
