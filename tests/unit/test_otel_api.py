"""The OpenTelemetry API's private globals are read behind checks: when a release moves
them, meshclient warns once and takes the public path, and still traces."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import opentelemetry.context
import opentelemetry.metrics
import opentelemetry.trace
import pytest

from meshclient.telemetry import _otel_api, providers
from meshclient.testing import LoopbackCluster

#: The private names, renamed in a copy of the API as a later release might move them.
RENAMES = ("_TRACER_PROVIDER", "_METER_PROVIDER", "_RUNTIME_CONTEXT", "_SPAN_KEY",
           "_ProxyMeterProvider")


def test_the_shape_of_the_installed_api_is_found() -> None:
    shape = _otel_api.SHAPE
    assert shape.missing == [] and shape.fast
    assert providers._HAS_GLOBALS


def test_a_missing_part_warns_once_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_otel_api, "TRACE_GLOBAL", "_TRACER_PROVIDER_MOVED")
    monkeypatch.setattr(_otel_api, "SPAN_KEY_NAME", "_SPAN_KEY_MOVED")
    with pytest.warns(RuntimeWarning, match="opentelemetry.trace._TRACER_PROVIDER_MOVED") as w:
        shape = _otel_api.probe()
    assert len(w) == 1 and "_SPAN_KEY_MOVED" in str(w[0].message)
    assert not shape.fast and shape.trace is None and shape.span_key is None
    assert shape.metrics is not None and shape.context_var is not None

    def getter() -> str:
        return "public"

    assert providers._unset_global(None, "_TRACER_PROVIDER", getter) is getter


def _shadow_api(root: Path) -> None:
    """A copy of the API's trace, metrics and context packages with the private globals
    renamed. `opentelemetry` is a namespace package, so the copy wins for these three; where
    another distribution made it a regular package (xds-protos ships an empty
    `opentelemetry/__init__.py`), the copy's `__init__.py` extends its path to the original."""
    original = Path(opentelemetry.trace.__file__ or "").parent.parent
    if (original / "__init__.py").exists():
        (root / "opentelemetry").mkdir(parents=True)
        (root / "opentelemetry" / "__init__.py").write_text(
            f"__path__.append({str(original)!r})\n")
    for package in (opentelemetry.trace, opentelemetry.metrics, opentelemetry.context):
        src = Path(package.__file__ or "").parent
        dst = root / "opentelemetry" / src.name
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        for path in dst.rglob("*.py"):
            text = path.read_text()
            for name in RENAMES:
                text = re.sub(rf"(?<![A-Za-z0-9]){name}\b", f"{name}_V2", text)
            path.write_text(text)


SCRIPT = textwrap.dedent("""
    import sys, warnings
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        import httpx
        import meshclient
        from meshclient import telemetry
        import meshclient.telemetry.tracing  # imported twice: still one warning
    import opentelemetry.trace as trace
    assert trace.__file__.startswith(sys.argv[2]), trace.__file__
    assert not hasattr(trace, "_TRACER_PROVIDER") and hasattr(trace, "_TRACER_PROVIDER_V2")
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1, messages
    for name in ("_TRACER_PROVIDER", "_METER_PROVIDER", "_RUNTIME_CONTEXT", "_SPAN_KEY",
                 "_ProxyMeterProvider"):
        assert name in messages[0], messages[0]

    policy = meshclient.Policy.from_dict({"services": {"users": {"endpoints": [sys.argv[1]]}}})
    request = httpx.Request("GET", "http://users/")
    assert telemetry.start_call(request, "users") is None  # no SDK: nothing to record
    with httpx.Client(transport=meshclient.MeshTransport(policy)) as client:
        assert client.get("http://users/").status_code == 200

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # the globals, found through the public API
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    with httpx.Client(transport=meshclient.MeshTransport(policy)) as client:
        r = client.get("http://users/")
        assert r.status_code == 200
    names = sorted(s.name for s in exporter.get_finished_spans())
    assert names == ["GET", "GET users"], names
    sent = r.json()["headers"].get("traceparent") or r.json()["headers"]["Traceparent"]
    assert sent.split("-")[1] == format(exporter.get_finished_spans()[0].context.trace_id, "032x")
    data = reader.get_metrics_data()
    recorded = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics
                for m in sm.metrics}
    assert "http.client.request.duration" in recorded, recorded
    print("fallback ok")
""")


@pytest.mark.slow
def test_with_the_private_globals_moved_meshclient_still_traces(tmp_path: Path) -> None:
    shadow = tmp_path / "api"
    _shadow_api(shadow)
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(shadow), os.getcwd(), env.get("PYTHONPATH", "")])
    with LoopbackCluster(1) as cluster:
        done = subprocess.run([sys.executable, str(script), cluster.addresses[0],
                               str(shadow)], env=env, capture_output=True, text=True,
                              timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "fallback ok"
