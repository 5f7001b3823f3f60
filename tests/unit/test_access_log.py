"""Access-log pieces without a network: the environment settings (examples and a property
test of the parsers), response flags, the time format, the OpenTelemetry Logs bridge
(the SDK's in-memory exporter), sampling with a seeded RNG, and stdout."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import meshclient
from meshclient.policy import AccessLogSettings, access_log_from_env
from meshclient.telemetry import access_log
from meshclient.testing import SeededRng


def test_settings_from_the_environment() -> None:
    assert access_log_from_env({}) == AccessLogSettings()
    assert access_log_from_env({"MESHCLIENT_ACCESS_LOG": "stderr",
                                "MESHCLIENT_ACCESS_LOG_SAMPLE": "0.25",
                                "MESHCLIENT_ACCESS_LOG_OTEL": "true"}) == AccessLogSettings(
        destination="stderr", sample=0.25, otel=True)


@pytest.mark.parametrize(("name", "value"), [
    ("MESHCLIENT_ACCESS_LOG_SAMPLE", "1.5"), ("MESHCLIENT_ACCESS_LOG_SAMPLE", "half"),
    ("MESHCLIENT_ACCESS_LOG_SAMPLE", "nan"), ("MESHCLIENT_ACCESS_LOG_OTEL", "maybe"),
    ("MESHCLIENT_ACCESS_LOG", "/tmp/a\nb"), ("MESHCLIENT_ACCESS_LOG_FLUSH_INTERVAL", "0s"),
    ("MESHCLIENT_ACCESS_LOG_FLUSH_INTERVAL", "2h"), ("MESHCLIENT_ACCESS_LOG_FLUSH_INTERVAL", "soon"),
    ("MESHCLIENT_ACCESS_LOG_BUFFER", "0"), ("MESHCLIENT_ACCESS_LOG_BUFFER", "many"),
    ("MESHCLIENT_ACCESS_LOG_BUFFER", "2000000"),
])
def test_bad_values_name_the_variable_and_value(name: str, value: str) -> None:
    with pytest.raises(meshclient.PolicyError) as info:
        access_log_from_env({name: value})
    assert name in str(info.value) and repr(value) in str(info.value)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12), st.text(max_size=8), st.text(max_size=10),
       st.one_of(st.text(max_size=10), st.integers(-5, 2_000_000).map(str)))
def test_any_value_parses_or_raises_policy_error(sample: str, otel: str, interval: str,
                                                 buffer: str) -> None:
    try:
        got = access_log_from_env({"MESHCLIENT_ACCESS_LOG_SAMPLE": sample,
                                   "MESHCLIENT_ACCESS_LOG_OTEL": otel,
                                   "MESHCLIENT_ACCESS_LOG_FLUSH_INTERVAL": interval,
                                   "MESHCLIENT_ACCESS_LOG_BUFFER": buffer})
    except meshclient.PolicyError:
        return
    assert 0.0 <= got.sample <= 1.0 and not math.isnan(got.sample)
    assert 0.0 < got.flush_interval <= 3600.0 and 1 <= got.buffer <= 1_000_000


def test_buffering_settings_from_the_environment() -> None:
    got = access_log_from_env({"MESHCLIENT_ACCESS_LOG_FLUSH_INTERVAL": "250ms",
                               "MESHCLIENT_ACCESS_LOG_BUFFER": "100"})
    assert (got.flush_interval, got.buffer) == (0.25, 100)
    assert (AccessLogSettings().flush_interval, AccessLogSettings().buffer) == (1.0, 16384)


def test_error_flags() -> None:
    request = httpx.Request("GET", "http://svc/")
    assert access_log.error_flags(meshclient.CircuitOpen("x", request=request)) == "UO"
    assert access_log.error_flags(httpx.ConnectError("x")) == "UF"
    retried = httpx.ReadTimeout("x")
    retried.__dict__["meshclient_attempts"] = 3
    assert access_log.error_flags(retried) == "UT,URX"
    assert access_log.error_flags(ValueError("x")) == "-"


def test_start_time_format() -> None:
    assert access_log.start_time(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123Z"
    assert access_log.start_time(1_700_000_001_000_000_000) == "2023-11-14T22:13:21.000Z"


def test_sampling_uses_the_injected_rng(tmp_path: Path) -> None:
    log = access_log.AccessLog(AccessLogSettings(destination=str(tmp_path / "a"), sample=0.3),
                               rng=SeededRng(7))
    taken = sum(log.sampled() for _ in range(2000))
    assert 450 <= taken <= 750  # 600 expected


def test_stdout_and_the_otel_bridge(capsys: pytest.CaptureFixture[str]) -> None:
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    set_logger_provider(provider)
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("test")
    log = access_log.AccessLog(AccessLogSettings(destination="stdout", otel=True))
    request = httpx.Request("GET", "http://svc/x?password=p")
    started = time.time_ns()
    with tracer.start_as_current_span("caller") as span:
        entry = log.outbound(request)
        assert entry is not None
        entry.closed(httpx.Response(200, content=b"ok", request=request), None)
        log.write(access_log.inbound_entry(
            start_ns=started, duration_ns=0, method="GET", path="/in", status=200,
            reason=None, principal=None, address=None, bytes_received=0, trace_id=None,
            route=None))
    ended = time.time_ns()
    log.flush()  # the records are emitted by the writer, as the lines are written
    out, _ = capsys.readouterr()
    line = json.loads(out.splitlines()[0])
    assert line["path"] == "/x?password=REDACTED" and line["response_code"] == 200
    outbound, inbound = exporter.get_finished_logs()
    assert outbound.log_record.body == "access"
    assert outbound.log_record.attributes["path"] == "/x?password=REDACTED"
    assert inbound.log_record.attributes["path"] == "/in"
    for record in (outbound, inbound):  # as if emitted on the request path, when it ended
        assert record.log_record.trace_id == span.get_span_context().trace_id
        assert record.log_record.span_id == span.get_span_context().span_id
        assert started - 2_000_000 <= record.log_record.timestamp <= ended + 2_000_000


_text = st.text(max_size=20)
_maybe = st.one_of(st.none(), _text)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**62), st.integers(0, 10**12), _text, _maybe, st.integers(0, 999),
       st.sampled_from([None, "rate", "shed", "denied", "deadline"]), _maybe, _maybe,
       st.integers(0, 2**40), _maybe, _maybe)
def test_an_inbound_line_is_the_json_of_its_fields(
        start_ns: int, duration_ns: int, method: str, path: str | None, status: int,
        reason: str | None, principal: str | None, address: str | None, received: int,
        trace_id: str | None, route: str | None) -> None:
    record = access_log.inbound_entry(
        start_ns=start_ns, duration_ns=duration_ns, method=method, path=path, status=status,
        reason=reason, principal=principal, address=address, bytes_received=received,
        trace_id=trace_id, route=route)
    flags, details = access_log.INBOUND_REASONS.get(reason or "", ("-", "via_upstream"))
    expected = {"start_time": access_log.start_time(start_ns), "direction": "inbound",
                "method": method, "path": path, "route": route, "response_code": status,
                "response_flags": flags, "response_code_details": details,
                "duration": duration_ns // 1_000_000, "bytes_received": received,
                "downstream_remote_address": address, "downstream_peer_principal": principal,
                "trace_id": trace_id}
    assert record.line() == json.dumps(expected, separators=(",", ":"))  # the same bytes
    assert record.fields() == expected


@settings(max_examples=200, deadline=None)
@given(_text, _text, _text, st.integers(1, 9), st.integers(100, 599),
       st.sampled_from(["", "12", "x"]), st.booleans())
def test_an_outbound_line_is_the_json_of_its_fields(
        query: str, cluster: str, host: str, attempts: int, status: int, length: str,
        failed: bool) -> None:
    from meshclient._core.report import stamp

    log = access_log.AccessLog(AccessLogSettings(destination="stderr", flush_interval=3600.0))
    headers = {"content-length": length} if length else {}
    request = httpx.Request("POST", "http://svc/p", params={"q": query, "token": "s3cret"},
                            headers=headers)
    entry = log.outbound(request)
    assert entry is not None
    error = meshclient.CircuitOpen("x", request=request)
    if failed:
        entry.failed(error)
    else:
        entry.closed(stamp(httpx.Response(status, content=b"abc", request=request),
                           cluster, host, attempts), None)
    got = json.loads(entry.line())
    assert list(got) == ["start_time", "direction", "method", "path", "authority", "duration",
                         "bytes_sent", "trace_id", "response_code", "response_flags",
                         "upstream_cluster", "upstream_host",
                         "upstream_request_attempt_count", "bytes_received",
                         *(["error_type"] if failed else [])]
    assert got["path"] == access_log.safe_path(request.url) and got["trace_id"] is None
    assert "token=REDACTED" in got["path"]
    assert got["bytes_sent"] == (12 if length == "12" else 0)  # a malformed length: 0
    if failed:
        assert (got["response_code"], got["response_flags"], got["error_type"]) == (
            0, "UO", "CircuitOpen")
    else:
        assert (got["upstream_cluster"], got["upstream_host"]) == (cluster, host)
        assert (got["response_code"], got["upstream_request_attempt_count"]) == (status,
                                                                                 attempts)
        assert got["response_flags"] == ("URX" if attempts > 1 and status >= 500 else "-")
    fields = entry.fields()  # made again: its start time may differ by the clocks' jitter
    assert {**fields, "start_time": None} == {**got, "start_time": None}
