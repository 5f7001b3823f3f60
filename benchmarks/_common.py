"""Helpers every benchmark module shares.

* `FastServer` - a minimal asyncio HTTP/1.1 keep-alive server in a separate process that
  answers every request with 1 KiB, so the server is never the bottleneck and its CPU is
  never counted against the client.
* `measure(run)` - (CPU seconds of this process, wall seconds, count) of one call;
  `cpu_seconds()` - `time.process_time()` (every thread of this process);
  `rusage_cpu()` - user+system seconds from `resource.getrusage` (same process, for
  cross-checking when a benchmark spawns helpers).
* `interleave(rounds, variants)` - run variants alternately (order flipped each round) so
  drift on a loaded machine hits every variant alike.
* `median_ratio(a, b)`, `table(rows, header)`, `base_parser(description)`.

The measuring code and the upstream server live in the package (`meshclient._bench`)
because `meshclient bench` runs them without a repository checkout; nothing here
duplicates them. `report(rows, target)` (the full run's table and verdict) is only here.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from meshclient._bench.measure import HEADER, LIMITS, Result, Row, format_row, measure, mesh_policy
from meshclient._bench.upstream import FastServer

__all__ = ["LIMITS", "FastServer", "Result", "Row", "base_parser", "cpu_seconds",
           "interleave", "measure", "median_ratio", "mesh_policy", "report", "run_threads",
           "rusage_cpu", "table"]


def cpu_seconds() -> float:
    return time.process_time()


def rusage_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_threads(target: Callable[[int], object], n: int) -> None:
    """`target(0)` … `target(n - 1)`, each in its own thread, all started, then all joined."""
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def interleave(rounds: int, variants: Mapping[str, Callable[[], int]]) -> dict[str, Result]:
    """Run every variant once per round, alternating the order; returns a `Result` each."""
    results = {name: Result(name) for name in variants}
    names = list(variants)
    for i in range(rounds):
        for name in names if i % 2 == 0 else list(reversed(names)):
            results[name].add(*measure(variants[name]))
    return results


def median_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """Median of paired per-round ratios (robust to one noisy round)."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A plain aligned text table."""
    cells = [[str(h) for h in header]] + [[f"{c:.3f}" if isinstance(c, float) else str(c)
                                           for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells)


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a short run (CI smoke test)")
    return parser


def report(rows: Sequence[Row], target: float = 1.10) -> str:
    """The table, and whether every row meets the CPU target."""
    lines = [HEADER, *(format_row(r) for r in rows)]
    worst = max(r.ratio() for r in rows)
    verdict = "meets" if worst <= target else "MISSES"
    lines.append(f"worst CPU ratio {worst:.3f} {verdict} the target (mesh <= {target:.2f} x bare)")
    return "\n".join(lines)
