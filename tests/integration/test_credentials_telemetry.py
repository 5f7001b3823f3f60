"""Credentials never reach telemetry: with the OpenTelemetry SDK's in-memory exporter (the
shared `otel` fixture), an OAuth2 token and a bearer token, through refreshes, a failed
refresh and an error, appear in no span name, attribute, event, link or status, and in no
log record. Both shells, a real token endpoint and real backends."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from meshclient.policy import Policy
from meshclient.security.credentials import CredentialsUnavailable
from meshclient.testing import LoopbackCluster
from tests.servers.oauth import TokenEndpoint
from tests.servers.otel import Otel, otel_fixture  # noqa: F401 (the `otel` fixture)

BEARER = "bearer-secret-7f3a"
SECRET = "s3cret-value"  # the token endpoint's client secret


def everything_in(spans: list[ReadableSpan]) -> str:
    """Every piece of text a span exporter would ship."""
    parts: list[str] = []

    def attrs(mapping: Any) -> None:
        parts.extend(f"{k}={v!r}" for k, v in (mapping or {}).items())

    for span in spans:
        parts += [span.name, str(span.status.description)]
        attrs(span.attributes)
        attrs(span.resource.attributes)
        for event in span.events:
            parts.append(event.name)
            attrs(event.attributes)
        for link in span.links:
            attrs(link.attributes)
    return "\n".join(parts)


def sent_auth(cluster: LoopbackCluster) -> set[str]:
    return {h.get("authorization") or "" for b in cluster.backends
            for _m, _p, h, _b in b.requests} - {""}


@pytest.mark.slow
def test_tokens_never_appear_in_spans_or_logs(mesh, cluster: LoopbackCluster, otel: Otel,
                                              monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("SVC_SECRET", SECRET)
    monkeypatch.setenv("B_TOKEN", BEARER)
    with TokenEndpoint(expires_in=0.5) as endpoint:
        caller = mesh(Policy.from_dict({"services": {
            "svc": {"endpoints": cluster.addresses[:2], "retry": {"attempts": 2},
                    "auth": {"oauth2": {"token_url": endpoint.url, "client_id": "app",
                                        "client_secret_env": "SVC_SECRET",
                                        "refresh_before": "0s"}}},
            "b": {"endpoints": [cluster.addresses[2]],
                  "auth": {"bearer": {"token_env": "B_TOKEN"}}},
        }}))
        assert caller.get("http://svc/a?q=1").status_code == 200
        assert caller.get("http://b/b").status_code == 200
        assert caller.get("http://svc/c?status=503").status_code == 503  # retried: 2 attempts
        time.sleep(0.6)  # the scenario: real time passes until it expires; the next call refreshes
        assert caller.get("http://svc/d").status_code == 200
        endpoint.status = 503
        time.sleep(0.6)  # the scenario: expired again, and the refresh fails: an error span
        with pytest.raises(CredentialsUnavailable):
            caller.get("http://svc/e")
    # the tokens were really in play: the backends received them
    assert sent_auth(cluster) == {"Bearer tok-1", "Bearer tok-2", f"Bearer {BEARER}"}
    spans = otel.spans()
    assert len(otel.named("GET svc")) == 4 and len(otel.named("GET b")) == 1
    assert any(s.status.status_code == StatusCode.ERROR for s in spans)
    assert any(s.events for s in spans)  # the failure was recorded as an event
    text = everything_in(spans)
    logs = " ".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    for secret in ("tok-1", "tok-2", BEARER, SECRET, "Bearer "):
        assert secret not in text, secret
        assert secret not in logs, secret
