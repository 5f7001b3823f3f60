"""The inbound scope and the status rendering, without I/O (FakeClock)."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace

from meshclient._cli.status import render
from meshclient.context import (
    ATTEMPT_HEADER,
    DEADLINE_HEADER,
    RETRIES_SPENT_HEADER,
    Inbound,
    inbound,
    parse_attempt,
    parse_count,
    parse_deadline_ms,
    parse_inbound,
    parse_retries_spent,
    spent_mark,
)
from meshclient.server import ConcurrencyLimit, ServerScope
from meshclient.server.decorators import lower_headers
from meshclient.server.inbound import marked_headers, trace_context
from meshclient.testing import FakeClock
from tests.servers.helpers import run_threads


def test_scope_sets_and_resets_the_inbound_context() -> None:
    clock = FakeClock()
    scope = ServerScope({"x-mesh-deadline-ms": "250", "x-mesh-attempt": "2"}, "GET", "/x",
                        clock=clock)
    assert scope.enter() is None
    current = inbound.get()
    assert current is not None and current.attempt == 2 and current.is_retry
    assert current.deadline_ns == clock.now_ns() + 250_000_000
    scope.exit(200)
    assert inbound.get() is None


def test_scope_rejects_expired_and_releases_permits() -> None:
    clock = FakeClock()
    limit = ConcurrencyLimit(1)
    expired = ServerScope({"x-mesh-deadline-ms": "0"}, "GET", clock=clock, limit=limit)
    rejection = expired.enter()
    assert rejection is not None and rejection.status == 504
    expired.exit(rejection.status)
    assert limit.in_flight == 0
    first = ServerScope({}, "GET", clock=clock, limit=limit)
    assert first.enter() is None
    second = ServerScope({}, "GET", clock=clock, limit=limit)
    shed = second.enter()
    assert shed is not None and shed.status == 503 and dict(shed.headers)["retry-after"] == "1"
    second.exit(503)
    first.exit(200)
    assert limit.in_flight == 0


def test_malformed_headers_are_ignored() -> None:
    scope = ServerScope({"x-mesh-deadline-ms": "soon", "x-mesh-attempt": "-3"}, "GET",
                        clock=FakeClock())
    assert scope.enter() is None
    assert scope.inbound.deadline_ns is None and scope.inbound.attempt == 1
    scope.exit(200)


def test_limit_is_exact_under_threads() -> None:
    limit = ConcurrencyLimit(5)
    admitted = []
    lock = threading.Lock()

    def grab() -> None:
        ok = limit.try_acquire()
        with lock:
            admitted.append(ok)

    run_threads([grab] * 40, 5)
    assert admitted.count(True) == 5 and limit.in_flight == 5


def test_lower_headers() -> None:
    assert lower_headers({"X-Mesh-Attempt": "2"}) == {"x-mesh-attempt": "2"}
    assert lower_headers([("TraceParent", "x")]) == {"traceparent": "x"}


def test_render_status() -> None:
    doc = {"pid": 7, "registries": [{"policy": "v3", "generation": 2, "services": {
        "users": {"service": "users", "budget_balance": 42, "retries": 3,
                  "endpoints": [{"endpoint": "10.0.0.1:80", "estimate_ms": 12.345,
                                 "in_flight": 1, "breaker": "open", "ejected": True}]},
        "empty": {"service": "empty", "endpoints": []}}}]}
    text = render(doc)
    assert "policy v3 (generation 2)" in text
    assert "users  budget 42  retries=3" in text
    assert "10.0.0.1:80  12.3        1          open     True" in text
    assert "(no endpoints)" in text
    assert render({"pid": 1, "registries": []}).endswith("(no mesh transports in this process yet)")


# -- header parsers: any input gives a value or None, never an exception ---------------------

PARSERS = [parse_count, parse_attempt, parse_deadline_ms, parse_retries_spent]
header_values = st.one_of(st.text(), st.binary(), st.none(), st.integers(),
                          st.text(alphabet="0123456789²³¹٣ \t-+_.e", max_size=20))


@pytest.mark.parametrize("parse", PARSERS)
@given(raw=header_values)
def test_header_parsers_never_raise(parse: object, raw: object) -> None:
    value = parse(raw)  # type: ignore[operator]
    assert value is None or (isinstance(value, int) and value >= 0)


@given(n=st.integers(min_value=0, max_value=10**12 - 1), pad=st.sampled_from(["", " ", "\t"]))
def test_a_well_formed_count_reads_back(n: int, pad: str) -> None:
    assert parse_count(f"{pad}{n}{pad}") == n
    assert parse_count(str(n).encode()) == n
    assert parse_deadline_ms(str(n)) == n
    assert parse_attempt(str(n)) == (n or None)
    assert parse_retries_spent(str(n)) == (n or None)


@pytest.mark.parametrize("raw", ["²", "\u0663", "", " ", "-1", "+1", "1.0", "1e3", "0x2",
                                 "1 2", "9" * 13, "9" * 5000, b"\xb2", "١٢"])
def test_malformed_counts_read_as_absent(raw: object) -> None:
    assert all(parse(raw) is None for parse in PARSERS)


@given(headers=st.dictionaries(st.sampled_from([ATTEMPT_HEADER, DEADLINE_HEADER, "traceparent",
                                                "tracestate", "baggage", "x-other"]),
                               st.text()))
def test_inbound_headers_never_raise(headers: dict[str, str]) -> None:
    value = parse_inbound(headers, 1_000)
    assert value.attempt >= 1
    assert value.deadline_ns is None or value.deadline_ns >= 1_000
    assert trace_context(headers) is not None
    scope = ServerScope(headers, "GET", "/x", clock=FakeClock())
    rejection = scope.enter()
    try:  # a deadline already spent (x-mesh-deadline-ms: 0) is answered 504 at once
        assert rejection is None or rejection.status == 504
    finally:
        scope.exit(200 if rejection is None else rejection.status)  # always leave the context


def test_an_unreadable_trace_header_starts_a_new_trace() -> None:
    ctx = trace_context({"traceparent": "00-²²-zz-01", "tracestate": "=,,="})
    assert not trace.get_current_span(ctx).get_span_context().is_valid


# -- the retries-spent mark on an answer ---------------------------------------------------

def spent(*counts: int) -> Inbound:
    value = Inbound()
    value.spent.extend(counts)
    return value


@pytest.mark.parametrize(("request_", "status", "forwarded", "mark"), [
    (spent(), 503, None, None),            # nothing spent here: unmarked
    (spent(), 503, "4", None),             # ... and a forwarded mark is left as it is
    (spent(3), 200, None, None),           # a success is never marked
    (spent(3), 404, None, None),
    (spent(3), 503, None, "3"),
    (spent(3), 429, None, "3"),
    (spent(1, 3), 500, None, "3"),         # the most any outbound call spent
    (spent(1), 503, "3", "3"),             # a forwarded count below is never lowered
    (spent(4), 503, "3", "4"),
    (spent(2), 503, "²", "2"),             # a malformed forwarded mark reads as absent
])
def test_spent_mark(request_: Inbound, status: int, forwarded: str | None,
                    mark: str | None) -> None:
    assert spent_mark(request_, status, forwarded) == mark


def test_marked_headers_replace_a_forwarded_mark() -> None:
    headers = [("Content-Type", "text/plain"), ("X-Mesh-Retries-Spent", "2")]
    assert marked_headers(spent(3), 503, headers) == [("Content-Type", "text/plain"),
                                                     (RETRIES_SPENT_HEADER, "3")]
    assert marked_headers(spent(3), 200, headers) is None
    assert marked_headers(spent(), 503, headers) is None
