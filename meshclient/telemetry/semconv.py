"""Attribute and instrument names: OpenTelemetry's stable HTTP semantic conventions, plus
meshclient's own (`meshclient.*`) where the conventions have no name for a mesh concept."""

from __future__ import annotations

# Spans and the duration metrics (HTTP semantic conventions, stable).
HTTP_REQUEST_METHOD = "http.request.method"
HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"
HTTP_REQUEST_RESEND_COUNT = "http.request.resend_count"
HTTP_ROUTE = "http.route"
URL_FULL = "url.full"
URL_PATH = "url.path"
URL_SCHEME = "url.scheme"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
NETWORK_PEER_ADDRESS = "network.peer.address"
NETWORK_PEER_PORT = "network.peer.port"
ERROR_TYPE = "error.type"

# meshclient's own.
MESH_SERVICE = "meshclient.service"
MESH_ENDPOINT = "meshclient.endpoint"
MESH_ATTEMPTS = "meshclient.attempts"

#: The conventions' advised boundaries for `http.{client,server}.request.duration`, in s.
DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

#: Methods the conventions name; any other is reported as `_OTHER` (bounded cardinality).
KNOWN_METHODS = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST",
                           "PUT", "TRACE", "QUERY"})


def method_attr(method: str) -> str:
    return method if method in KNOWN_METHODS else "_OTHER"


def error_type(status: int | None, error: BaseException | None) -> str | None:
    """`error.type`: the exception's qualified class name, else the status code as a string
    for 4xx/5xx (client side), else None."""
    if error is not None:
        cls = type(error)
        return cls.__qualname__ if cls.__module__ == "builtins" else \
            f"{cls.__module__}.{cls.__qualname__}"
    if status is not None and status >= 400:
        return str(status)
    return None
