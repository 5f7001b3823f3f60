"""The cost of tracing: requests/s through bare httpx, and through the mesh with no
OpenTelemetry SDK, with the SDK recording every span, and with 1% sampling.

    python -m benchmarks.tracing [--requests 2000] [--rounds 7] [--quick]

Sequential keep-alive 1 KiB GETs (sync, concurrency 1) to the same fast server the
overhead benchmark uses, in its own process (so neither its CPU nor its share of the GIL
is counted against the client). Two phases, each with its own bare httpx: first with no
SDK anywhere in the process (as a service without one runs), then with the SDK's
providers. Within a phase every configuration runs in each round, interleaved in chunks
of ~100 requests (order flipped chunk by chunk), so load on the machine hits them alike;
each round compares against bare httpx of the same round, and the median of the rounds'
ratios is printed, for requests/s and for CPU per request.

The SDK rows measure tracing: a `TracerProvider` with a `BatchSpanProcessor` and an
exporter that drops what it gets (recording is measured, not shipping). Three more rows,
for reference, with no target:

* "mesh, not tracing" - the mesh in the same phase with no provider configured: the
  untraced mesh's rate in the same rounds, the ceiling of the "1% sampled" row (an
  unsampled call costs the sampler's decision and the trace context on top of it).
* "httpx + 2 SDK spans" - the SDK's own floor: bare httpx with the two spans meshclient
  records (the call and its attempt, with the same attributes) and the trace context
  injected, made by hand. No library can record those two spans for less.
* "mesh, every span + metrics" - the same with a `MeterProvider` too (one histogram
  measurement per attempt).

Targets, each a ratio of requests/s within the same round (median of the rounds):

* no SDK >= 0.90x bare httpx;
* every span recorded >= 0.90x of "httpx + 2 SDK spans": the SDK's own two spans cost
  bare httpx about a quarter of its rate, so bare httpx is the wrong floor for this row;
* 1% sampled >= 0.95x bare httpx (an unsampled call records nothing: it should cost
  almost nothing).
"""

from __future__ import annotations

import functools
import statistics
import sys
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from opentelemetry import propagate, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased

from meshclient import MeshTransport, telemetry
from meshclient._bench.measure import LIMITS, SERVICE, measure, mesh_policy
from meshclient._bench.upstream import FastServer

from ._common import base_parser

NO_SDK_TARGET = 0.90
EVERY_SPAN_TARGET = 0.90  # of FLOOR
SAMPLED_TARGET = 0.95  # of bare httpx
FLOOR = "httpx + 2 SDK spans"
UNTRACED = "mesh, not tracing"


class _Discard(SpanExporter):
    """Counts spans and drops them (the cost measured is recording, not shipping)."""

    def __init__(self) -> None:
        self.count = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.count += len(spans)
        return SpanExportResult.SUCCESS


def _tracer_provider(sampler: Any) -> TracerProvider:
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(BatchSpanProcessor(_Discard()))
    return provider


class Config:
    """One row: how to make one request, and the providers to use while it runs."""

    def __init__(self, name: str, get: Callable[[], None],
                 tracer_provider: TracerProvider | None = None,
                 meter_provider: MeterProvider | None = None, target: float | None = None,
                 against: str | None = None, also: str | None = None):
        self.name = name
        self.against = against  # the row `target` is a ratio of (None: the first, bare)
        self.also = also  # a row this one's ratio to is printed too (no target)
        self.get = get
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.target = target
        self.cpu: list[float] = []  # CPU seconds of each round
        self.wall: list[float] = []
        self.count: list[int] = []

    def batch(self, n: int) -> int:
        telemetry.configure(self.tracer_provider, self.meter_provider)
        get = self.get
        for _ in range(n):
            get()
        return n

    def rps(self) -> list[float]:
        return [n / w for n, w in zip(self.count, self.wall, strict=True)]

    def cpu_us(self) -> list[float]:
        return [c / n * 1e6 for c, n in zip(self.cpu, self.count, strict=True)]


def _floor(client: httpx.Client, url: str, tracer: trace.Tracer) -> Callable[[], None]:
    """Bare httpx inside two hand-made spans, like meshclient's (see the module doc)."""
    base: dict[str, str | int] = {"http.request.method": "GET",
                                  "url.full": f"http://{SERVICE}/",
                                  "server.address": SERVICE, "server.port": 80}
    attempt: dict[str, str | int] = dict(base)
    attempt.update({"network.peer.address": "127.0.0.1", "network.peer.port": 80})

    def get() -> None:
        call = tracer.start_span(f"GET {SERVICE}", attributes=base)
        ctx = trace.set_span_in_context(call)
        span = tracer.start_span("GET", ctx, trace.SpanKind.CLIENT, attempt)
        headers: dict[str, str] = {}
        propagate.inject(headers, trace.set_span_in_context(span, ctx))
        response = client.get(url, headers=headers)
        response.read()
        span.set_attribute("http.response.status_code", response.status_code)
        span.end()
        call.set_attributes({"http.response.status_code": response.status_code,
                             "meshclient.attempts": 1})
        call.end()

    return get


def _interleave(configs: list[Config], requests: int, rounds: int, chunk: int) -> None:
    for config in configs:  # warm connections, caches and providers
        config.batch(200)
    for _ in range(rounds):
        totals: dict[str, list[float]] = {c.name: [0.0, 0.0, 0.0] for c in configs}
        for j in range(max(1, requests // chunk)):
            for config in configs if j % 2 == 0 else configs[::-1]:
                cpu, wall, n = measure(functools.partial(config.batch, chunk))
                total = totals[config.name]
                total[0] += cpu
                total[1] += wall
                total[2] += n
        for config in configs:
            cpu_s, wall_s, count = totals[config.name]
            config.cpu.append(cpu_s)
            config.wall.append(wall_s)
            config.count.append(int(count))


def run(requests: int, rounds: int, chunk: int = 100) -> tuple[list[Config], list[Config]]:
    """Two phases, each against its own bare httpx: without any SDK in the process (as a
    service with no SDK runs), then with the SDK's providers."""
    with FastServer() as server, httpx.Client(limits=LIMITS) as bare, httpx.Client(
            transport=MeshTransport(mesh_policy(server), limits=LIMITS)) as mesh:
        bare_url, mesh_url = f"{server.url}/", f"http://{SERVICE}/"

        def plain(client: httpx.Client, url: str) -> None:
            client.get(url).read()

        bare_get = functools.partial(plain, bare, bare_url)
        mesh_get = functools.partial(plain, mesh, mesh_url)
        no_sdk = [Config("bare httpx", bare_get),
                  Config("mesh, no SDK", mesh_get, target=NO_SDK_TARGET)]
        _interleave(no_sdk, requests, rounds, chunk)

        every = _tracer_provider(ParentBased(ALWAYS_ON))
        sampled = _tracer_provider(ParentBased(TraceIdRatioBased(0.01)))
        floor = _tracer_provider(ParentBased(ALWAYS_ON))
        meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
        with_sdk = [
            Config("bare httpx", bare_get),
            Config("mesh, every span", mesh_get, every, target=EVERY_SPAN_TARGET,
                   against=FLOOR),
            Config("mesh, 1% sampled", mesh_get, sampled, target=SAMPLED_TARGET,
                   also=UNTRACED),
            Config(UNTRACED, mesh_get),
            Config(FLOOR, _floor(bare, bare_url, floor.get_tracer("floor"))),
            Config("mesh, every span + metrics", mesh_get, every, meters),
        ]
        try:
            _interleave(with_sdk, requests, rounds, chunk)
        finally:
            telemetry.configure(None, None)
            for provider in (every, sampled, floor):
                provider.shutdown()
            meters.shutdown()
    return no_sdk, with_sdk


def report(configs: list[Config]) -> tuple[str, bool]:
    """The table, and whether every row with a target meets it."""
    base = configs[0]
    by_name = {c.name: c for c in configs}
    lines = [f"{'configuration':<28} {'req/s':>7} {'vs bare':>8} {'CPU µs/req':>11} "
             f"{'CPU vs bare':>12}  target"]
    met = True
    for c in configs:
        rps = statistics.median(c.rps())
        ratio = statistics.median(r / b for r, b in zip(c.rps(), base.rps(), strict=True))
        cpu = statistics.median(c.cpu_us())
        cpu_ratio = statistics.median(b / x for x, b in zip(c.cpu_us(), base.cpu_us(),
                                                              strict=True))
        verdict = ""
        if c.target is not None:
            floor = by_name[c.against] if c.against is not None else base
            of = statistics.median(r / f for r, f in zip(c.rps(), floor.rps(), strict=True))
            ok = of >= c.target
            met = met and ok
            verdict = (f"{of:.3f}x of {floor.name} (>={c.target:.2f}) "
                       f"{'ok' if ok else 'MISSED'}")
            if c.also is not None:
                ref = by_name[c.also]
                of = statistics.median(r / f for r, f in zip(c.rps(), ref.rps(), strict=True))
                verdict += f"; {of:.3f}x of {ref.name}"
        lines.append(f"{c.name:<28} {rps:>7.0f} {ratio:>7.3f}x {cpu:>11.1f} "
                     f"{cpu_ratio:>11.3f}x {verdict}")
    return "\n".join(lines), met


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "tracing")
    parser.add_argument("--requests", type=int, default=2000, help="per config per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    requests, rounds = (400, 3) if args.quick else (args.requests, args.rounds)
    print(f"tracing: {requests} requests x {rounds} rounds per configuration, sync, "
          f"concurrency 1, 1 KiB keep-alive GET; ratios are medians of per-round ratios "
          f"against bare httpx", flush=True)
    no_sdk, with_sdk = run(requests, rounds)
    table, met = report(no_sdk)
    print("without an SDK in the process:\n" + table)
    table, met_sdk = report(with_sdk)
    print("with the SDK's providers (a BatchSpanProcessor dropping what it exports):\n" + table)
    met = met and met_sdk
    print("targets: " + ("met" if met else "MISSED"))
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
