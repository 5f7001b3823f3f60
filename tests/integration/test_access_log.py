"""Access logs on real loopback servers: the fields of a success, a retried call (`URX`
when retries are exhausted), a breaker refusal (`UO`), an outbound check's denial (`UAEX`)
through both shells, and of inbound requests (served, denied by authorization, rate
limited) through real ASGI and WSGI servers; sampling; off by default."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import meshclient
import meshclient.asgi
import meshclient.wsgi
from meshclient.policy import AccessLogSettings, Policy, PolicyStore
from meshclient.security.checks import Deny
from meshclient.telemetry import access_log
from meshclient.testing import Backend, LoopbackCluster
from tests.servers.threaded import serve_asgi, serve_wsgi

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "access.log"
    access_log.configure(AccessLogSettings(destination=str(path)))
    yield path
    access_log.reset()


def lines(path: Path) -> list[dict[str, Any]]:
    access_log.flush()  # lines are written in batches, off the caller's path
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_success(mesh, log_file: Path) -> None:
    with Backend() as backend:
        caller = mesh(Policy.from_dict({"services": {"users": {
            "endpoints": [backend.address]}}}))
        r = caller.get("http://users/v1/users/42?access_token=secret&page=2")
        assert r.status_code == 200
        (entry,) = lines(log_file)
    assert ISO.match(entry["start_time"])
    assert entry["direction"] == "outbound" and entry["method"] == "GET"
    assert entry["path"] == "/v1/users/42?access_token=REDACTED&page=2"  # no secrets
    assert (entry["response_code"], entry["response_flags"]) == (200, "-")
    assert entry["upstream_cluster"] == "users" and entry["upstream_host"] == backend.address
    assert entry["upstream_request_attempt_count"] == 1
    assert entry["bytes_received"] == len(r.content) and entry["bytes_sent"] == 0
    assert isinstance(entry["duration"], int) and entry["duration"] >= 0
    assert "trace_id" in entry


def _tracking_depth(response: httpx.Response) -> int:
    """How many of the transport's body-close wrappers the response's stream has."""
    depth, stream = 0, response.stream
    while stream is not None:  # httpx's own wrapper (BoundSyncStream), then the transport's
        depth += type(stream).__name__.startswith("Tracked")
        stream = getattr(stream, "_stream", None)
    return depth


def _stream_sync(client: httpx.Client, path: Path) -> tuple[int, int, bytes]:
    response = client.send(client.build_request("GET", "http://users/s"), stream=True)
    depth, before = _tracking_depth(response), len(lines(path))
    body = response.read()  # reads and closes the body
    return depth, before, body


async def _stream_async(client: httpx.AsyncClient, path: Path) -> tuple[int, int, bytes]:
    response = await client.send(client.build_request("GET", "http://users/s"), stream=True)
    depth, before = _tracking_depth(response), len(lines(path))
    body = await response.aread()
    return depth, before, body


def test_a_streamed_line_is_written_when_the_body_closes_through_one_hook(
        mesh, shell: str, log_file: Path) -> None:
    with Backend() as backend:
        caller = mesh(Policy.from_dict({"services": {"users": {
            "endpoints": [backend.address]}}}))
        depth, before, body = caller.call(_stream_sync if shell == "sync" else _stream_async,
                                          log_file)
        (entry,) = lines(log_file)
    assert depth == 1  # the log's callback joins the call's own close hook
    assert before == 0  # nothing is logged before the body closes
    assert entry["bytes_received"] == len(body) and entry["response_code"] == 200


def _traced_sync(client: httpx.Client, tracer: Any) -> str:
    with tracer.start_as_current_span("caller") as span:
        client.get("http://users/t").read()
    return f"{span.get_span_context().trace_id:032x}"


async def _traced_async(client: httpx.AsyncClient, tracer: Any) -> str:
    with tracer.start_as_current_span("caller") as span:
        await (await client.get("http://users/t")).aread()
    return f"{span.get_span_context().trace_id:032x}"


def test_the_trace_id_is_the_callers(mesh, shell: str, log_file: Path) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("test")
    with Backend() as backend:
        caller = mesh(Policy.from_dict({"services": {"users": {
            "endpoints": [backend.address]}}}))
        trace_id = caller.call(_traced_sync if shell == "sync" else _traced_async, tracer)
        caller.get("http://users/untraced")
        traced, untraced = lines(log_file)
    assert traced["trace_id"] == trace_id and untraced["trace_id"] is None


def test_retries_exhausted_is_urx(mesh, log_file: Path) -> None:
    with LoopbackCluster(2) as cluster:
        cluster.set(0, status=503)
        cluster.set(1, status=503)
        caller = mesh(cluster.policy("users", retry={"attempts": 2},
                                     breaker={"failures": 100}))
        assert caller.get("http://users/x").status_code == 503
        (entry,) = lines(log_file)
    assert (entry["response_code"], entry["response_flags"]) == (503, "URX")
    assert entry["upstream_request_attempt_count"] == 2


def test_a_retried_success_counts_its_attempts(mesh, log_file: Path) -> None:
    with LoopbackCluster(2) as cluster:
        cluster.set(0, status=503)
        caller = mesh(cluster.policy("users", retry={"attempts": 2},
                                     balancer={"kind": "round-robin"},
                                     breaker={"failures": 100},
                                     outlier={"consecutive_failures": 0}))
        for _ in range(4):
            assert caller.get("http://users/x").status_code == 200
        entries = lines(log_file)
    assert len(entries) == 4
    retried = [e for e in entries if e["upstream_request_attempt_count"] == 2]
    assert retried and all(e["response_flags"] == "-" and e["response_code"] == 200
                           for e in retried)


def test_breaker_refusal_is_uo(mesh, log_file: Path) -> None:
    with LoopbackCluster(1) as cluster:
        cluster.set(0, status=503)
        caller = mesh(cluster.policy("users", retry={"attempts": 1},
                                     breaker={"failures": 2, "reset": "60s"}))
        for _ in range(2):
            caller.get("http://users/a")
        with pytest.raises(meshclient.CircuitOpen):
            caller.get("http://users/a")
        entries = lines(log_file)
    assert [e["response_flags"] for e in entries] == ["-", "-", "UO"]
    assert entries[2]["response_code"] == 0 and entries[2]["error_type"] == "CircuitOpen"
    assert entries[2]["upstream_cluster"] == "users"


def test_outbound_check_denial_is_uaex(mesh, log_file: Path) -> None:
    caller = mesh(Policy(), check=lambda view: Deny(403))
    with pytest.raises(meshclient.CheckDenied):
        caller.get("http://127.0.0.1:1/x")
    (entry,) = lines(log_file)
    assert entry["response_flags"] == "UAEX"


def test_sampling_and_off(mesh, tmp_path: Path) -> None:
    path = tmp_path / "sampled.log"
    with Backend() as backend:
        policy = Policy.from_dict({"services": {"users": {"endpoints": [backend.address]}}})
        access_log.configure(AccessLogSettings(destination=str(path), sample=0.0))
        try:
            caller = mesh(policy)
            for _ in range(5):
                caller.get("http://users/")
            assert lines(path) == []
        finally:
            access_log.reset()
        assert access_log.current() is None  # off by default (no MESHCLIENT_ACCESS_LOG)


def test_environment_turns_it_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "env.log"
    monkeypatch.setenv("MESHCLIENT_ACCESS_LOG", str(path))
    monkeypatch.setenv("MESHCLIENT_ACCESS_LOG_SAMPLE", "1")
    access_log.reset()
    try:
        log = access_log.current()
        assert log is not None and log.settings.destination == str(path)
    finally:
        access_log.reset()
    monkeypatch.setenv("MESHCLIENT_ACCESS_LOG_SAMPLE", "2")
    with pytest.raises(meshclient.PolicyError, match="MESHCLIENT_ACCESS_LOG_SAMPLE"):
        access_log.current()
    access_log.reset()


# -- inbound ---------------------------------------------------------------------------------

async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [b"ok"]


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_inbound_lines(kind: str, log_file: Path) -> None:
    store = PolicyStore(Policy.from_dict({
        "authorization": {"default": "allow", "trust_caller_header": "x-caller",
                          "rules": [{"action": "deny", "callers": ["mallory"]}]},
        "inbound_limits": {"rate": 0.01, "burst": 1, "key": "principal"}}))
    serve, app = ((serve_asgi, meshclient.asgi.MeshMiddleware(asgi_app, policy=store))
                  if kind == "asgi" else
                  (serve_wsgi, meshclient.wsgi.MeshMiddleware(wsgi_app, policy=store)))
    with serve(app) as base, httpx.Client(base_url=base) as client:
        assert client.post("/orders", content=b"12345",
                           headers={"x-caller": "alice"}).status_code == 200
        assert client.get("/orders", headers={"x-caller": "mallory"}).status_code == 403
        assert client.get("/orders", headers={"x-caller": "alice"}).status_code == 429
    served, denied, limited = lines(log_file)
    assert served["direction"] == "inbound" and ISO.match(served["start_time"])
    assert (served["method"], served["path"], served["response_code"]) == ("POST", "/orders",
                                                                           200)
    assert served["downstream_peer_principal"] == "alice"
    assert served["downstream_remote_address"] == "127.0.0.1"
    assert served["bytes_received"] == 5 and served["response_flags"] == "-"
    assert (denied["response_code"], denied["response_code_details"]) == (
        403, "rbac_access_denied")
    assert denied["downstream_peer_principal"] is None  # a denied caller is not admitted
    assert (limited["response_code"], limited["response_flags"]) == (429, "RL")
