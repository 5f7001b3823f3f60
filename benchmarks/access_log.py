"""What the access log costs: client CPU per request (`time.process_time`: every thread of
this process, the log's writer thread included) through a mesh transport to a real
loopback server in another process, with the access log off vs writing every request to a
file. Target: at most 5% added CPU per request.

    python -m benchmarks.access_log [--requests 2000] [--rounds 7] [--quick]

Sequential keep-alive 1 KiB GETs (sync, concurrency 1) to the overhead benchmark's fast
server (`FastServer`, its own process, so its CPU is not counted), through one client and
one transport whose access log is switched off and on (two clients, both with the log off,
measured against each other this way differed by 2-3% in the median on a loaded machine). Off and on run interleaved
within each round in chunks of ~100 requests, the order flipped chunk by chunk, so load on
the machine hits both alike. Each "on" chunk ends with `access_log.flush()`
inside its measurement, so the lines it queued are formatted and written on its account
(not in a later "off" chunk by the writer thread). The added share is computed per round
(on / off - 1); printed: the median of the rounds and their range.

Also printed: what one line costs in isolation, split into the request path (capturing
the values: `time.thread_time` of the caller) and the writer (formatting the JSON and
writing the batch, done here on the caller's thread by `flush()`).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from meshclient import MeshTransport
from meshclient._bench.measure import LIMITS, SERVICE, mesh_policy
from meshclient._bench.upstream import FastServer
from meshclient.policy import AccessLogSettings
from meshclient.telemetry import access_log

from ._common import base_parser

TARGET = 0.05  # at most 5% more CPU per request
CHUNK = 100
URL = f"http://{SERVICE}/"


def _chunk(client: httpx.Client, transport: MeshTransport, n: int,
           log: access_log.AccessLog | None) -> float:
    """CPU seconds of `n` requests with `log` (None: off), and of writing their lines."""
    transport.access_log = log
    start = time.process_time()
    for _ in range(n):
        client.get(URL).read()
    if log is not None:
        log.flush()
    return time.process_time() - start


def run(requests: int, rounds: int, path: Path) -> tuple[list[float], list[float], int]:
    """CPU seconds per request of each round, off and on, and the lines written."""
    log = access_log.AccessLog(AccessLogSettings(destination=str(path)))
    with FastServer() as server, MeshTransport(mesh_policy(server), limits=LIMITS) as mesh, \
            httpx.Client(transport=mesh) as client:
        _chunk(client, mesh, 200, None)  # warm connections and caches
        _chunk(client, mesh, 200, log)
        warm = len(path.read_text().splitlines())
        off_rounds, on_rounds = [], []
        chunks = max(1, requests // CHUNK)
        for _ in range(rounds):
            cpu_off = cpu_on = 0.0
            for j in range(chunks):
                if j % 2 == 0:
                    cpu_off += _chunk(client, mesh, CHUNK, None)
                    cpu_on += _chunk(client, mesh, CHUNK, log)
                else:
                    cpu_on += _chunk(client, mesh, CHUNK, log)
                    cpu_off += _chunk(client, mesh, CHUNK, None)
            off_rounds.append(cpu_off / (chunks * CHUNK))
            on_rounds.append(cpu_on / (chunks * CHUNK))
    written = len(path.read_text().splitlines()) - warm
    return off_rounds, on_rounds, written


def line_cost(n: int, directory: Path) -> tuple[float, float]:
    """CPU seconds per line: (on the request path, formatting and writing)."""
    log = access_log.AccessLog(AccessLogSettings(destination=str(directory / "a.log"),
                                                 flush_interval=3600.0, buffer=n + 1))
    request = httpx.Request("GET", f"http://{SERVICE}/x?page=2")
    response = httpx.Response(200, content=b"ok", request=request)
    log.flush()
    start = time.thread_time()
    for _ in range(n):
        entry = log.outbound(request)
        assert entry is not None
        entry.closed(response, None)
    captured = time.thread_time()
    log.flush()
    return (captured - start) / n, (time.thread_time() - captured) / n


def report(off: Sequence[float], on: Sequence[float], written: int,
           line: tuple[float, float]) -> tuple[str, bool]:
    added = [b / a - 1 for a, b in zip(off, on, strict=True)]
    share = statistics.median(added)
    off_us, on_us = statistics.median(off) * 1e6, statistics.median(on) * 1e6
    met = share <= TARGET
    lines = [
        f"access log off           : {off_us:8.1f} us CPU/request (median of rounds)",
        f"access log to a file     : {on_us:8.1f} us CPU/request ({written} lines written)",
        f"added (median of rounds) : {share * 100:+8.1f}%  (rounds from {min(added) * 100:+.1f}%"
        f" to {max(added) * 100:+.1f}%; target <= {TARGET * 100:.0f}%: "
        f"{'met' if met else 'MISSED'})",
        f"one line alone           : {sum(line) * 1e6:8.1f} us CPU ({line[0] * 1e6:.1f} on the "
        f"request path + {line[1] * 1e6:.1f} formatting and writing)"]
    return "\n".join(lines), met


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "access_log")
    parser.add_argument("--requests", type=int, default=2000, help="per configuration per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--strict", action="store_true", help="exit 1 if the target is missed")
    args = parser.parse_args(argv)
    requests, rounds = (400, 3) if args.quick else (args.requests, args.rounds)
    print(f"access log: {requests} requests x {rounds} rounds per configuration, sync, "
          f"concurrency 1, 1 KiB keep-alive GET, off/on interleaved in chunks of {CHUNK}",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        off, on, written = run(requests, rounds, Path(tmp) / "access.log")
        text, met = report(off, on, written, line_cost(max(requests, 2000), Path(tmp)))
    print(text)
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
