"""What the access log costs: client CPU per request (`time.process_time`: every thread of
this process, the log's writer thread included) through a mesh transport to a real
loopback server in another process, with the access log off vs writing every request to a
file. Target: at most 5% added CPU per request.

    python -m benchmarks.access_log [--requests 2000] [--rounds 9] [--quick]

Sequential keep-alive 1 KiB GETs (sync, concurrency 1) to the overhead benchmark's fast
server (`FastServer`, its own process, so its CPU is not counted), through one client and
one transport whose access log is switched off and on (two clients, both with the log off,
measured against each other differed by 2-3% in the median on a loaded machine). Within
each round "off", "on" and "off again" run interleaved in chunks of 100 requests, the order
flipped chunk by chunk, so load on the machine hits them alike. Each "on" chunk ends with
`access_log.flush()` inside its measurement, so the lines it queued are formatted and
written on its account (not in a later "off" chunk by the writer thread). The added share
is computed per round (on / off - 1); printed: the median of the rounds and their range.
"off again" is a second series with the log off, measured the same way: how far two
identical series differ on the machine at the time (the noise floor of the figure above).

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
from meshclient.telemetry._log_writer import BATCH

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


def run(requests: int, rounds: int, path: Path) -> tuple[dict[str, list[float]], int]:
    """CPU seconds per request of each round for "off", "on" and "off again" (a second off
    series: the noise floor), and the lines written."""
    log = access_log.AccessLog(AccessLogSettings(destination=str(path)))
    logs = {"off": None, "on": log, "off again": None}
    with FastServer() as server, MeshTransport(mesh_policy(server), limits=LIMITS) as mesh, \
            httpx.Client(transport=mesh) as client:
        for warm_log in logs.values():  # warm connections and caches
            _chunk(client, mesh, 200, warm_log)
        warm = len(path.read_text().splitlines())
        per_round: dict[str, list[float]] = {name: [] for name in logs}
        chunks = max(1, requests // CHUNK)
        names = list(logs)
        for _ in range(rounds):
            cpu = dict.fromkeys(logs, 0.0)
            for j in range(chunks):
                for name in names if j % 2 == 0 else names[::-1]:
                    cpu[name] += _chunk(client, mesh, CHUNK, logs[name])
            for name in logs:
                per_round[name].append(cpu[name] / (chunks * CHUNK))
    written = len(path.read_text().splitlines()) - warm
    return per_round, written


def line_cost(n: int, directory: Path) -> tuple[float, float]:
    """CPU seconds per line: (on the request path, formatting and writing), both on this
    thread: lines are flushed in batches smaller than the writer's `BATCH`, so its thread
    never wakes to write them meanwhile."""
    log = access_log.AccessLog(AccessLogSettings(destination=str(directory / "a.log"),
                                                 flush_interval=3600.0))
    request = httpx.Request("GET", f"http://{SERVICE}/x?page=2")
    response = httpx.Response(200, content=b"ok", request=request)
    batch = BATCH // 2
    captured = written = 0.0
    for _ in range(max(1, n // batch)):
        start = time.thread_time()
        for _ in range(batch):
            entry = log.outbound(request)
            assert entry is not None
            entry.closed(response, None)
        middle = time.thread_time()
        log.flush()
        captured += middle - start
        written += time.thread_time() - middle
    lines = max(1, n // batch) * batch
    return captured / lines, written / lines


def _added(of: Sequence[float], to: Sequence[float]) -> tuple[float, float, float]:
    """Median, lowest and highest of the per-round shares added (`of` over `to`)."""
    added = [b / a - 1 for a, b in zip(to, of, strict=True)]
    return statistics.median(added), min(added), max(added)


def report(per_round: dict[str, list[float]], written: int,
           line: tuple[float, float]) -> tuple[str, bool]:
    off, on, again = per_round["off"], per_round["on"], per_round["off again"]
    share, low, high = _added(on, off)
    noise, noise_low, noise_high = _added(again, off)
    met = share <= TARGET
    lines = [
        f"access log off           : {statistics.median(off) * 1e6:8.1f} us CPU/request "
        f"(median of rounds)",
        f"access log to a file     : {statistics.median(on) * 1e6:8.1f} us CPU/request "
        f"({written} lines written)",
        f"added (median of rounds) : {share * 100:+8.1f}%  (rounds from {low * 100:+.1f}% to "
        f"{high * 100:+.1f}%; target <= {TARGET * 100:.0f}%: {'met' if met else 'MISSED'})",
        f"off again vs off (noise) : {noise * 100:+8.1f}%  (rounds from {noise_low * 100:+.1f}% "
        f"to {noise_high * 100:+.1f}%)",
        f"one line alone           : {sum(line) * 1e6:8.1f} us CPU ({line[0] * 1e6:.1f} on the "
        f"request path + {line[1] * 1e6:.1f} formatting and writing)"]
    return "\n".join(lines), met


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "access_log")
    parser.add_argument("--requests", type=int, default=2000, help="per configuration per round")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--strict", action="store_true", help="exit 1 if the target is missed")
    args = parser.parse_args(argv)
    requests, rounds = (400, 3) if args.quick else (args.requests, args.rounds)
    print(f"access log: {requests} requests x {rounds} rounds per configuration, sync, "
          f"concurrency 1, 1 KiB keep-alive GET, off/on/off interleaved in chunks of {CHUNK}",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        per_round, written = run(requests, rounds, Path(tmp) / "access.log")
        text, met = report(per_round, written, line_cost(max(requests, 2000), Path(tmp)))
    print(text)
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
