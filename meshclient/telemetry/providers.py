"""Which tracer and meter to use, decided once per provider change.

With no SDK installed or configured, the global providers are the API's proxies: `tracer()`
and `instruments()` return None and every caller takes the fast path (no spans, no
measurements). A provider set later (`trace.set_tracer_provider`) is noticed on the next
call: each call reads the global provider and compares identity with the last one seen.
`configure()` pins explicit providers instead of the global ones.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace

from ._otel_api import METRICS_GLOBAL, SHAPE, TRACE_GLOBAL

if TYPE_CHECKING:
    from .metrics import Instruments

_NAME = "meshclient"
_VERSION = "0.1.0"

_tracer_override: trace.TracerProvider | None = None
_meter_override: metrics.MeterProvider | None = None
_NONE: Any = object()
# (provider last seen, tracer or None): replaced as one tuple, so readers never mix them.
_tracing: tuple[Any, trace.Tracer | None] = (_NONE, None)
_metering: tuple[Any, Instruments | None] = (_NONE, None)


def configure(tracer_provider: trace.TracerProvider | None = None,
              meter_provider: metrics.MeterProvider | None = None) -> None:
    """Use these providers instead of the global ones (None: back to the global provider)."""
    global _tracer_override, _meter_override, _tracing, _metering, _state
    _tracer_override = tracer_provider
    _meter_override = meter_provider
    _tracing = (_NONE, None)
    _metering = (_NONE, None)
    _state = _UNKNOWN


def _is_noop_tracer_provider(provider: object) -> bool:
    return isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def _is_noop_meter_provider(provider: object) -> bool:
    # The API's proxy class is private (`_otel_api`); without it, any provider the API
    # package itself defines is its placeholder (real ones come from an SDK).
    if isinstance(provider, metrics.NoOpMeterProvider):
        return True
    proxy = SHAPE.proxy_meter_provider
    if proxy is not None:
        return isinstance(provider, proxy)
    return type(provider).__module__.startswith("opentelemetry.metrics")


def _unset_global(module: ModuleType | None, attr: str,
                  getter: Callable[[], Any]) -> Callable[[], Any]:
    """`getter` (OTel's `get_tracer_provider` / `get_meter_provider`) without the environment
    lookup it makes on every call while no global provider is set (two per request, the
    largest part of the no-SDK fast path). While `module.<attr>` (the global OTel returns once
    set, by code or from its OTEL_PYTHON_*_PROVIDER variable) is unset and `os.environ` has
    not changed size since, the answer is the proxy `getter` returned last time (safe: only
    that global or a new variable changes OTel's answer; the one case missed is a variable
    added while another is removed between two calls, until the size next changes). If
    OTel's module no longer has that global (`module` None: see `_otel_api`), `getter`
    is used as it is."""
    if module is None or getattr(module, attr, _NONE) is _NONE:
        return getter
    seen: tuple[int, Any] = (-1, None)  # (size of os.environ, the proxy), replaced whole

    def get() -> Any:
        nonlocal seen
        if getattr(module, attr) is not None:
            return getter()  # set: OTel returns it without looking at the environment
        size = len(os.environ)
        cached = seen
        if cached[0] == size:
            return cached[1]
        provider = getter()
        if getattr(module, attr) is None:  # still unset: the proxy, for this environment
            seen = (size, provider)
        return provider

    return get


_global_tracer_provider = _unset_global(SHAPE.trace, TRACE_GLOBAL, trace.get_tracer_provider)
_global_meter_provider = _unset_global(SHAPE.metrics, METRICS_GLOBAL,
                                       metrics.get_meter_provider)

#: Whether both OTel provider globals were found (`_otel_api`): else no fast path.
_HAS_GLOBALS = SHAPE.fast
#: The modules holding them (read by `tracing.start_call` only while `_HAS_GLOBALS`).
_TRACE_GLOBALS: Any = SHAPE.trace
_METRICS_GLOBALS: Any = SHAPE.metrics
# os.environ's own dict (its size is os.environ's; `len(os.environ)` is a Python-level call)
_ENV: Any = getattr(os.environ, "_data", os.environ)
# What `tracer()` and `instruments()` last answered, with everything the answers depend on:
# (tracer override, meter override, OTel's global tracer provider, its global meter
# provider, len(os.environ), tracer, instruments). Replaced whole; -1: never matches.
_UNKNOWN: tuple[Any, ...] = (_NONE, _NONE, _NONE, _NONE, -1, None, None)
_state = _UNKNOWN


def current() -> tuple[trace.Tracer | None, Instruments | None]:
    """`(tracer(), instruments())`, remembered with what they depend on: while the
    overrides, both OTel globals and the environment's size stay the same, so do the
    answers, and `tracing.start_call` reuses them after a few identity checks (inlined
    there, on every request). Without the globals (`_otel_api`), nothing is remembered."""
    global _state
    got = tracer(), instruments()
    if _HAS_GLOBALS:
        _state = (_tracer_override, _meter_override, _TRACE_GLOBALS._TRACER_PROVIDER,
                  _METRICS_GLOBALS._METER_PROVIDER, len(_ENV), *got)
    return got


def tracer() -> trace.Tracer | None:
    """The meshclient tracer, or None when no real tracer provider is configured."""
    global _tracing
    provider = _tracer_override or _global_tracer_provider()
    seen = _tracing
    if seen[0] is not provider:
        real = None if _is_noop_tracer_provider(provider) else provider.get_tracer(
            _NAME, _VERSION)
        seen = _tracing = (provider, real)
    return seen[1]


def instruments() -> Instruments | None:
    """meshclient's instruments, or None when no real meter provider is configured."""
    global _metering
    provider = _meter_override or _global_meter_provider()
    seen = _metering
    if seen[0] is not provider:
        from .metrics import Instruments

        real = None if _is_noop_meter_provider(provider) else Instruments(
            provider.get_meter(_NAME, _VERSION))
        seen = _metering = (provider, real)
    return seen[1]
