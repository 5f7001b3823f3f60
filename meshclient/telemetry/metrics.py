"""meshclient's instruments, through the OpenTelemetry metrics API.

| instrument | kind | unit | attributes |
|---|---|---|---|
| `http.client.request.duration` | histogram | s | method, `server.address`, `server.port`, endpoint, status, error |
| `http.server.request.duration` | histogram | s | method, route, status, error |
| `meshclient.retries` | counter | {retry} | service |
| `meshclient.retry_budget.exhausted` | counter | {refusal} | service |
| `meshclient.retries.exhausted` | counter | {call} | service, `meshclient.reason` (`attempts`, `budget`) |
| `meshclient.breaker.transitions` | counter | {transition} | service, endpoint, `meshclient.breaker.state` |
| `meshclient.breaker.fast_fails` | counter | {request} | service, endpoint |
| `meshclient.endpoint.ejections` | counter | {ejection} | service, endpoint |
| `meshclient.endpoint.returns` | counter | {return} | service, endpoint |
| `meshclient.panic.transitions` | counter | {transition} | service, `meshclient.panic.active` |
| `meshclient.policy.refreshes` | counter | {refresh} | — |
| `meshclient.policy.rejections` | counter | {rejection} | — |
| `meshclient.discovery.refreshes` | counter | {refresh} | service |
| `meshclient.discovery.errors` | counter | {error} | service |
| `meshclient.discovery.staleness` | gauge | s | service |
| `meshclient.server.rejections` | counter | {request} | `meshclient.reason` (`shed`, `deadline`) |
| `meshclient.mirror.dropped` | counter | {copy} | service (the mirror target) |

One `Instruments` exists per meter provider (see `providers.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.metrics import Histogram, Meter

from .semconv import DURATION_BUCKETS


def _histogram(meter: Meter, name: str, description: str) -> Histogram:
    try:
        return meter.create_histogram(name, unit="s", description=description,
                                      explicit_bucket_boundaries_advisory=DURATION_BUCKETS)
    except TypeError:  # opentelemetry-api < 1.23 has no bucket advice
        return meter.create_histogram(name, unit="s", description=description)


class _Gauge:
    """A synchronous gauge where the API has one (1.23+), else a no-op."""

    def __init__(self, meter: Meter, name: str, unit: str, description: str) -> None:
        create = getattr(meter, "create_gauge", None)
        self._gauge = None if create is None else create(name, unit=unit,
                                                         description=description)

    def set(self, value: float, attributes: Mapping[str, Any]) -> None:
        if self._gauge is not None:
            self._gauge.set(value, attributes)


class Instruments:
    """Every instrument meshclient records, created once from one meter."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        counter = meter.create_counter
        self.client_duration = _histogram(
            meter, "http.client.request.duration",
            "Duration of each HTTP attempt, until its response body is closed.")
        self.server_duration = _histogram(
            meter, "http.server.request.duration",
            "Duration of inbound HTTP requests handled by meshclient handlers/middleware.")
        self.retries = counter("meshclient.retries", "{retry}", "Retries sent.")
        self.budget_exhausted = counter("meshclient.retry_budget.exhausted", "{refusal}",
                                        "Retries refused because the retry budget was empty.")
        self.retries_exhausted = counter(
            "meshclient.retries.exhausted", "{call}",
            "Calls that gave up on a retryable failure, by reason: attempts (the attempt "
            "limit was reached) or budget (the retry budget refused).")
        self.breaker_transitions = counter("meshclient.breaker.transitions", "{transition}",
                                           "Circuit breaker state changes.")
        self.breaker_fast_fails = counter("meshclient.breaker.fast_fails", "{request}",
                                          "Attempts refused by an open breaker.")
        self.ejections = counter("meshclient.endpoint.ejections", "{ejection}",
                                 "Endpoints ejected by outlier detection.")
        self.returns = counter("meshclient.endpoint.returns", "{return}",
                               "Ejected endpoints returned to the rotation.")
        self.panic = counter("meshclient.panic.transitions", "{transition}",
                             "Panic mode entered (active=true) or left (active=false).")
        self.policy_applied = counter("meshclient.policy.refreshes", "{refresh}",
                                      "Policy snapshots applied.")
        self.policy_rejected = counter("meshclient.policy.rejections", "{rejection}",
                                       "Policy documents rejected as invalid.")
        self.xds_updates = counter("meshclient.xds.updates", "{update}",
                                   "xDS answers applied and ACKed, by type (lds, rds, cds, eds).")
        self.xds_nacks = counter("meshclient.xds.nacks", "{nack}",
                                 "xDS answers refused (NACKed) as invalid, by type.")
        self.discovery_refreshes = counter("meshclient.discovery.refreshes", "{refresh}",
                                           "Successful discovery refreshes.")
        self.discovery_errors = counter("meshclient.discovery.errors", "{error}",
                                        "Failed discovery refreshes.")
        self.discovery_staleness = _Gauge(meter, "meshclient.discovery.staleness", "s",
                                          "Age of the endpoint set being served.")
        self.server_rejections = counter("meshclient.server.rejections", "{request}",
                                         "Inbound requests shed (503) or expired (504).")
        self.mirror_dropped = counter("meshclient.mirror.dropped", "{copy}",
                                      "Mirror copies dropped: the mirror queue was full.")

    def __repr__(self) -> str:
        count = sum(1 for name in vars(self) if name != "meter")
        return (f"<Instruments {count} from {type(self.meter).__name__} "
                f"{getattr(self.meter, 'name', '?')!r}>")
