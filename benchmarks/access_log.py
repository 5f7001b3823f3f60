"""What the access log costs: client CPU time per request (`time.process_time`, this
process only) through a mesh transport to a real loopback backend running in another
process, with the access log off vs writing every request to a file. Interleaved rounds,
best of each; prints both and the added CPU as a share (target: at most 5%).

    python -m benchmarks.access_log [requests_per_round] [--quick]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

import meshclient
from meshclient.policy import AccessLogSettings, Policy
from meshclient.telemetry import access_log

_BACKEND = ("import sys, time; from meshclient.testing import Backend; "
            "b = Backend().start(); print(b.address, flush=True); sys.stdin.read()")


def _round(client: httpx.Client, n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        client.get("http://svc/x").read()
    return (time.process_time() - start) / n


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("requests", type=int, nargs="?", default=2000,
                        help="requests per client per round")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (200 requests)")
    args = parser.parse_args(argv)
    n = min(args.requests, 200) if args.quick else args.requests
    backend = subprocess.Popen([sys.executable, "-c", _BACKEND], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert backend.stdout is not None
        address = backend.stdout.readline().strip()
        policy = Policy.from_dict({"services": {"svc": {"endpoints": [address]}}})
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "access.log"
            access_log.configure(None)
            off = httpx.Client(transport=meshclient.MeshTransport(policy))
            access_log.configure(AccessLogSettings(destination=str(path)))
            on = httpx.Client(transport=meshclient.MeshTransport(policy))
            access_log.reset()
            best_off = best_on = float("inf")
            for _ in range(7):
                best_off = min(best_off, _round(off, n))
                best_on = min(best_on, _round(on, n))
            off.close()
            on.close()
            written = len(path.read_text().splitlines())
    finally:
        backend.stdin.close()  # type: ignore[union-attr]
        backend.wait(10)
    added = best_on - best_off
    print(f"access log off           : {best_off * 1e6:8.1f} us CPU/request")
    print(f"access log to a file     : {best_on * 1e6:8.1f} us CPU/request "
          f"({written} lines written)")
    print(f"added                    : {added * 1e6:8.1f} us CPU/request "
          f"({added / best_off * 100:+.1f}%, target <= 5%)")
    print(f"one line alone           : {_line_cost(n * 5) * 1e6:8.1f} us CPU "
          f"(entry, JSON, os.write)")


def _line_cost(n: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        log = access_log.AccessLog(AccessLogSettings(destination=str(Path(tmp) / "a.log")))
        request = httpx.Request("GET", "http://svc/x")
        response = httpx.Response(200, content=b"ok", request=request)
        start = time.process_time()
        for _ in range(n):
            entry = log.outbound(request)
            assert entry is not None
            entry.closed(response, None)
        return (time.process_time() - start) / n


if __name__ == "__main__":
    main()
