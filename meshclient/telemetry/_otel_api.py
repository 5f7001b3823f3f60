"""The private parts of opentelemetry-api the fast paths read (no SDK; the trace-context
headers of a call, `_propagation`), each found and checked once, at import.

With no SDK configured, a request's only telemetry work is to learn that there is nothing
to do. The public way to learn it (`trace.get_tracer_provider()`,
`metrics.get_meter_provider()`, `context.get_current()`, `trace.get_current_span()`)
looks at the environment and builds objects on every call; reading the API's own globals
is a few attribute loads. Those globals are private, so each is looked up here with
`getattr` and checked for the expected shape:

| part | where (opentelemetry-api 1.20-1.x) |
|---|---|
| global tracer provider | `opentelemetry.trace._TRACER_PROVIDER` |
| global meter provider | `opentelemetry.metrics._internal._METER_PROVIDER` |
| current context | `opentelemetry.context._RUNTIME_CONTEXT._current_context` (a `ContextVar`) |
| span key in a context | `opentelemetry.trace.propagation._SPAN_KEY` |
| the meter provider used until one is set | `opentelemetry.metrics._internal._ProxyMeterProvider` |
| baggage key in a context | `opentelemetry.baggage._BAGGAGE_KEY` |

If any is missing or shaped otherwise (a later release moved it), meshclient warns once
(`RuntimeWarning`, naming the parts) and uses the public calls instead: the same
answers, slower. pyproject caps opentelemetry-api below 2 (the versions tested).
"""

from __future__ import annotations

import importlib
import warnings
from contextvars import ContextVar
from types import ModuleType
from typing import Any

from opentelemetry import context as otel_context

TRACE_MODULE, TRACE_GLOBAL = "opentelemetry.trace", "_TRACER_PROVIDER"
METRICS_MODULE, METRICS_GLOBAL = "opentelemetry.metrics._internal", "_METER_PROVIDER"
CONTEXT_GLOBAL = "_RUNTIME_CONTEXT"
SPAN_KEY_MODULE, SPAN_KEY_NAME = "opentelemetry.trace.propagation", "_SPAN_KEY"
BAGGAGE_KEY_MODULE, BAGGAGE_KEY_NAME = "opentelemetry.baggage", "_BAGGAGE_KEY"
PROXY_METER_NAME = "_ProxyMeterProvider"


def module_with_global(module_name: str, attr: str) -> ModuleType | None:
    """The module, if it has a global `attr` that is unset (None) or a provider."""
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return module if attr in vars(module) else None


def context_var() -> ContextVar[Any] | None:
    """The `ContextVar` the default runtime context keeps the current context in, checked
    against `get_current()`; None for any other runtime context."""
    runtime = getattr(otel_context, CONTEXT_GLOBAL, None)
    var = getattr(runtime, "_current_context", None)
    if isinstance(var, ContextVar) and var.get() is otel_context.get_current():
        return var
    return None


def context_key(module_name: str, name: str) -> str | None:
    """A context key the API keeps in a module global (a string), or None."""
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    key = getattr(module, name, None)
    return key if isinstance(key, str) else None


def span_key() -> str | None:
    return context_key(SPAN_KEY_MODULE, SPAN_KEY_NAME)


def baggage_key() -> str | None:
    """The key baggage is kept under, checked: an entry set with `baggage.set_baggage`
    must be found under it."""
    key = context_key(BAGGAGE_KEY_MODULE, BAGGAGE_KEY_NAME)
    if key is None:
        return None
    from opentelemetry import baggage

    probe = baggage.set_baggage("meshclient.probe", "1", otel_context.Context())
    found = probe.get(key)
    return key if isinstance(found, dict) and found.get("meshclient.probe") == "1" else None


class Shape:
    """What was found (None: not there; the public path is used for it)."""

    __slots__ = ("baggage_key", "context_var", "metrics", "proxy_meter_provider", "span_key",
                 "trace")

    def __init__(self) -> None:
        self.trace = module_with_global(TRACE_MODULE, TRACE_GLOBAL)
        self.metrics = module_with_global(METRICS_MODULE, METRICS_GLOBAL)
        self.context_var = context_var()
        self.span_key = span_key()
        #: Where baggage is kept in a context (`_propagation`: the header fast path).
        self.baggage_key = baggage_key()
        proxy = getattr(self.metrics, PROXY_METER_NAME, None)
        #: The API's placeholder meter provider class (no SDK: nothing to record).
        self.proxy_meter_provider: type | None = proxy if isinstance(proxy, type) else None

    @property
    def missing(self) -> list[str]:
        out = []
        if self.trace is None:
            out.append(f"{TRACE_MODULE}.{TRACE_GLOBAL}")
        if self.metrics is None:
            out.append(f"{METRICS_MODULE}.{METRICS_GLOBAL}")
        if self.context_var is None:
            out.append(f"opentelemetry.context.{CONTEXT_GLOBAL}")
        if self.span_key is None:
            out.append(f"{SPAN_KEY_MODULE}.{SPAN_KEY_NAME}")
        if self.baggage_key is None:
            out.append(f"{BAGGAGE_KEY_MODULE}.{BAGGAGE_KEY_NAME}")
        if self.proxy_meter_provider is None:
            out.append(f"{METRICS_MODULE}.{PROXY_METER_NAME}")
        return out

    @property
    def fast(self) -> bool:
        """Whether the no-SDK fast path can read the provider globals."""
        return self.trace is not None and self.metrics is not None


def probe() -> Shape:
    """Look (once per process: `SHAPE`); warn once when something is not there."""
    shape = Shape()
    if shape.missing:
        warnings.warn(
            "meshclient: this opentelemetry-api does not have "
            f"{', '.join(shape.missing)}; using the public API instead (correct, slower "
            "when no SDK is configured)", RuntimeWarning, stacklevel=2)
    return shape


SHAPE = probe()
