"""`meshclient bench`: a short run of the overhead benchmark (bare httpx against httpx
through the mesh), needing no repository checkout. The full run is
`python -m benchmarks.overhead`."""

from __future__ import annotations

import argparse
from typing import Any

TARGET = 1.10
_TARGET_TEXT = f"CPU per request through the mesh <= {TARGET:.2f} x bare httpx's"
FULL_REQUESTS, FULL_ROUNDS = 2000, 7  # `python -m benchmarks.overhead`'s defaults


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("bench", help="measure the mesh's CPU overhead per request")
    p.add_argument("--requests", type=int, default=500, help="requests per batch (default 500)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--shell", choices=("sync", "async", "both"), default="both")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .._bench.measure import HEADER, added_cpu_us, format_added, run_overhead  # imported on use: keeps the CLI fast

    if args.requests < 16 or args.rounds < 1:
        print("bench: --requests must be at least 16 and --rounds at least 1")
        return 2
    shells = ("sync", "async") if args.shell == "both" else (args.shell,)
    print(f"meshclient bench: {args.requests} requests x {args.rounds} rounds per variant, "
          "1 KiB keep-alive GET, bare httpx vs MeshTransport, interleaved")
    print(f"target: {_TARGET_TEXT}")
    print(HEADER, flush=True)
    rows = run_overhead(requests=args.requests, rounds=args.rounds, shells=shells,
                        progress=lambda line: print(line, flush=True))
    worst = max(row.ratio() for row in rows)
    verdict = "meets" if worst <= TARGET else "MISSES"
    print(f"worst CPU ratio {worst:.3f} {verdict} the target ({_TARGET_TEXT})")
    if args.requests < FULL_REQUESTS or args.rounds < FULL_ROUNDS:
        print(f"(a short run: its ratios move by about ±0.03 from run to run; the full run, "
              f"--requests {FULL_REQUESTS} --rounds {FULL_ROUNDS} or "
              f"`python -m benchmarks.overhead`, by about ±0.01)")
    print(format_added(*added_cpu_us(requests=max(args.requests, 500))))
    return 0
