"""Access-log pieces without a network: the environment settings (examples and a property
test of the parsers), response flags, the time format, the OpenTelemetry Logs bridge
(the SDK's in-memory exporter), sampling with a seeded RNG, and stdout."""

from __future__ import annotations

import json
import math
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
    log = access_log.AccessLog(AccessLogSettings(destination="stdout", otel=True))
    request = httpx.Request("GET", "http://svc/x?password=p")
    entry = log.outbound(request)
    assert entry is not None
    entry.closed(httpx.Response(200, content=b"ok", request=request), None)
    log.flush()
    line = json.loads(capsys.readouterr().out)
    assert line["path"] == "/x?password=REDACTED" and line["response_code"] == 200
    (record,) = exporter.get_finished_logs()
    assert record.log_record.body == "access"
    assert record.log_record.attributes["path"] == "/x?password=REDACTED"
