"""What the mesh costs per request: bare httpx against httpx through `MeshTransport`.

    python -m benchmarks.overhead [--requests N] [--rounds R] [--quick] [--strict]

Keep-alive 1 KiB GETs to a fast local server (separate process), sync and async, at
concurrency 1 and 16, bare and meshed interleaved in one run. Prints requests per second,
CPU microseconds per request (client process only) and the CPU ratio mesh/bare; then the
mesh's own cost in microseconds, measured with an in-memory inner transport (no sockets).
Target: the mesh path costs at most 10% more CPU per request (ratio <= 1.10).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from meshclient._bench.measure import HEADER, added_cpu_us, format_added, run_overhead

from ._common import base_parser, report

TARGET = 1.10


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "overhead")
    parser.add_argument("--requests", type=int, default=2000, help="requests per batch")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    parser.add_argument("--strict", action="store_true", help="exit 1 if the target is missed")
    args = parser.parse_args(argv)
    requests, rounds = (400, 3) if args.quick else (args.requests, args.rounds)
    print(f"overhead: {requests} requests x {rounds} rounds per variant, 1 KiB keep-alive GET")
    print(HEADER, flush=True)
    rows = run_overhead(requests=requests, rounds=rounds,
                        progress=lambda line: print(line, flush=True))
    print(report(rows, TARGET).splitlines()[-1])
    print(format_added(*added_cpu_us(requests=500 if args.quick else 5000)), flush=True)
    missed = max(r.ratio() for r in rows) > TARGET
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
