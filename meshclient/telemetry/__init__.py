"""Tracing, metrics and logging through the OpenTelemetry API (the SDK is never required).

With no SDK configured, every hook takes a fast path (no spans, no measurements); set a
global tracer/meter provider, or call `configure(...)`, and meshclient records.
Access logs (`access_log`, JSON lines per request) are read from `MESHCLIENT_ACCESS_LOG`.
"""

from __future__ import annotations

from .events import install as _install_listener
from .providers import configure
from .redact import add_sensitive_query_keys, sensitive_query_keys
from .tracing import Call, start_call

_install_listener()

__all__ = ["Call", "add_sensitive_query_keys", "configure", "sensitive_query_keys",
           "start_call"]
