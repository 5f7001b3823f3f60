"""`meshclient demo`: a small mesh on loopback, failures injected one after another,
meshclient compared with plain round robin on the same traffic (see docs/demo.md)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def _duration(text: str) -> float:
    from ..demo.scenario import MIN_DURATION

    value = float(text)
    if not MIN_DURATION <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between {MIN_DURATION:g} and 3600 seconds: "
                                         f"{text!r}")
    return value


def _rate(text: str) -> float:
    value = float(text)
    if not 1 <= value <= 500:
        raise argparse.ArgumentTypeError(f"must be between 1 and 500 requests/s: {text!r}")
    return value


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("demo", help="run the mesh demo on loopback (about a minute)")
    p.add_argument("--duration", type=_duration, default=60.0, metavar="SECONDS",
                   help="length of the run; every phase scales with it (default 60)")
    p.add_argument("--rate", type=_rate, default=40.0, metavar="RPS",
                   help="requests per second sent through each client (default 40)")
    p.add_argument("--plot", metavar="FILE.png", help="draw latency over time (needs matplotlib)")
    p.add_argument("--plain", action="store_true", help="plain lines, even on a terminal")
    p.add_argument("--seed", type=int, default=1, metavar="N", help="seed of the request mix (default 1)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import Options, plot
    from ..demo import run as run_demo

    if args.plot and not plot.available():  # say so now, not after a minute of demo
        print(f"demo: --plot {args.plot} needs matplotlib: pip install 'meshclient[demo]'",
              file=sys.stderr)
        return 2
    options = Options(duration=args.duration, rate=args.rate, plot=args.plot, plain=args.plain,
                      seed=args.seed)
    try:
        return run_demo(options)
    except KeyboardInterrupt:  # the demo's `finally` blocks have stopped every server
        print("\ninterrupted: every demo server is stopped", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `meshclient demo | head`: the reader left; the mesh is stopped
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
