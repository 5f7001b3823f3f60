"""The cost of tracing: requests/s through bare httpx, and through the mesh with no
OpenTelemetry SDK, with the SDK recording every span (and metrics), and with 1% sampling.

    python -m benchmarks.tracing [--requests 300] [--rounds 10]

One minimal loopback backend (a fixed 64-byte answer written in one send, so the server's
own cost and TCP delayed-ACK stalls do not hide the client's), sequential requests on one
keep-alive connection. The
configurations run interleaved, round after round, so machine load hits all of them alike;
the best round of each is compared (the median ratio is printed too), and so is the
process CPU time per request (client and in-process backend together; less sensitive to
other load on the machine than wall time).
Targets (issue 7): mesh without SDK >= 0.90x bare httpx; SDK recording every span >= 0.75x.
"""

from __future__ import annotations

import argparse
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Sequence

import httpx
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased

import meshclient
from meshclient import telemetry

_ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Length: 64\r\n\r\n" + b"x" * 64)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        conn: socket.socket = self.request
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return
            buffer += chunk
            while b"\r\n\r\n" in buffer:  # GETs only: no request bodies
                _, buffer = buffer.split(b"\r\n\r\n", 1)
                conn.sendall(_ANSWER)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class FastBackend:
    def __enter__(self) -> FastBackend:
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.url = f"http://{self.address}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Discard(SpanExporter):
    """Counts spans and drops them (the cost measured is recording, not shipping)."""

    def __init__(self) -> None:
        self.count = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.count += len(spans)
        return SpanExportResult.SUCCESS


class Config:
    def __init__(self, name: str, setup: Callable[[], Callable[[], None]] | None,
                 mesh: bool, floor: bool = False) -> None:
        self.name = name
        self.setup = setup
        self.mesh = mesh
        self.floor = floor
        self.rates: list[float] = []  # req/s of each round
        self.cpu_us: list[float] = []  # process CPU time per request of each round

    @property
    def best(self) -> float:
        """The best round (timeit's rule: slower rounds measure other load, not us)."""
        return max(self.rates)


def sdk(sampler: object) -> Callable[[], Callable[[], None]]:
    def setup() -> Callable[[], None]:
        provider = TracerProvider(sampler=sampler)  # type: ignore[arg-type]
        provider.add_span_processor(BatchSpanProcessor(_Discard()))
        meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
        telemetry.configure(provider, meters)

        def teardown() -> None:
            telemetry.configure(None, None)
            provider.shutdown()
            meters.shutdown()

        return teardown

    return setup


_floor_tracer: list[TracerProvider] = []


def floor_setup() -> Callable[[], None]:
    """The SDK's own cost: two hand-made spans (like the call and attempt spans) around a
    bare httpx request, with the same processor. No library can trace for less."""
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_Discard()))
    _floor_tracer.append(provider)

    def teardown() -> None:
        _floor_tracer.clear()
        provider.shutdown()

    return teardown


def _floor_get(client: httpx.Client, url: str) -> None:
    tracer = _floor_tracer[0].get_tracer("floor")
    attrs = {"http.request.method": "GET", "url.full": url, "server.address": "bench",
             "server.port": 80}
    with tracer.start_as_current_span("GET bench", attributes=attrs), \
            tracer.start_as_current_span("GET", attributes=attrs):
        client.get(url)


def run(n: int, rounds: int) -> list[Config]:
    configs = [Config("bare httpx", None, False),
               Config("mesh, no SDK", None, True),
               Config("mesh, SDK, every span", sdk(ParentBased(ALWAYS_ON)), True),
               Config("mesh, SDK, 1% sampled", sdk(ParentBased(TraceIdRatioBased(0.01))), True),
               Config("httpx + 2 SDK spans", floor_setup, False, floor=True)]
    with FastBackend() as backend:
        policy = meshclient.Policy.from_dict({"services": {"bench": {
            "endpoints": [backend.address]}}})
        with httpx.Client() as bare, httpx.Client(
                transport=meshclient.MeshTransport(policy)) as mesh:
            for _ in range(rounds):
                for config in configs:
                    teardown = config.setup() if config.setup else None
                    client, url = (mesh, "http://bench/x") if config.mesh else \
                        (bare, backend.url + "/x")
                    get: Callable[[httpx.Client, str], object] = \
                        _floor_get if config.floor else httpx.Client.get
                    for _ in range(20):  # warm the connection and caches
                        get(client, url)
                    start, cpu = time.perf_counter(), time.process_time()
                    for _ in range(n):
                        get(client, url)
                    config.rates.append(n / (time.perf_counter() - start))
                    config.cpu_us.append((time.process_time() - cpu) / n * 1e6)
                    if teardown:
                        teardown()
    return configs


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="per config per round")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    configs = run(args.requests, args.rounds)
    base = configs[0].best
    median = sorted(configs[0].rates)[len(configs[0].rates) // 2]
    base_cpu = min(configs[0].cpu_us)
    print(f"{'configuration':<24} {'best req/s':>10} {'vs bare':>8} {'median':>8} "
          f"{'CPU us/req':>11} {'CPU vs bare':>11}")
    for c in configs:
        mid = sorted(c.rates)[len(c.rates) // 2]
        cpu = min(c.cpu_us)
        print(f"{c.name:<24} {c.best:>10.0f} {c.best / base:>7.2f}x {mid / median:>7.2f}x "
              f"{cpu:>11.0f} {base_cpu / cpu:>10.2f}x")
    by_name = {c.name: c.best for c in configs}
    print(f"tracing cost inside the mesh (every span / no SDK): "
          f"{by_name['mesh, SDK, every span'] / by_name['mesh, no SDK']:.2f}x; "
          f"the SDK's floor (2 spans / bare): {by_name['httpx + 2 SDK spans'] / base:.2f}x")
    print("targets: no SDK >= 0.90x, every span >= 0.75x "
          f"({args.rounds} rounds x {args.requests} requests, interleaved; one run)")


if __name__ == "__main__":
    main()
