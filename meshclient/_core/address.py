"""Re-address a logical request to one endpoint.

This runs on every request, so it avoids `URL.copy_with` (which re-parses and re-validates
the whole URL, the largest single cost of the mesh path): the endpoint's part of the URL
(scheme, host, port) is normalised by httpx once per endpoint and cached, and each request
only swaps those three components of its already-parsed URL. Likewise the attempt's
headers are appended to a copy of httpx's item list rather than through `Headers.update`
(which builds a second `Headers` and re-derives the encoding per key), and a header is
read without deciding the encoding of all of them (`header`). If httpx's URL or
header internals ever differ from what this expects, a self-check at import turns that
shortcut off (with a `RuntimeWarning`, once) and `copy_with` / `update` are used
instead. Every read of httpx's private fields is in code those self-checks compare.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import httpx

from ..policy.trust import https_name as _https_name  # the scheme rule (docs/security.md)

if TYPE_CHECKING:
    from ..discovery.endpoint import Endpoint
    from ..policy import Service


@lru_cache(maxsize=4096)
def _origin(scheme: str, host: str, port: int) -> tuple[str, str, int | None]:
    """(scheme, host, port) as httpx normalises them (lower-case host, default port None)."""
    ref = httpx.URL(scheme=scheme, host=host, port=port)._uri_reference
    return ref.scheme, ref.host, ref.port


_new_tuple = tuple.__new__
_new_object = object.__new__


def _slow_url(url: httpx.URL, scheme: str, host: str, port: int) -> httpx.URL:
    return url.copy_with(scheme=scheme, host=host, port=port)


def _fell_back(shortcut: str) -> None:
    """Say once, loudly, that a shortcut is off (this httpx's internals differ)."""
    warnings.warn(f"meshclient: httpx's internals differ from what the {shortcut} shortcut "
                  f"expects (httpx {httpx.__version__}); using the public API instead, which "
                  f"is slower", RuntimeWarning, stacklevel=2)


def _fast_headers(headers: httpx.Headers, extra: dict[str, str]) -> httpx.Headers:
    """`headers.copy()` then `.update(extra)`, on httpx's item list of (raw name, lower-case
    name, value) byte triples: earlier occurrences of each name are removed, the new ones
    appended in order (ASCII, as `update` encodes them). Unlike `copy()`, it leaves the
    encoding undecided when the original has not decided it yet (deciding scans every
    header; httpx decides it the same way, from the same bytes, if it is ever asked)."""
    out = object.__new__(httpx.Headers)
    out._list = items = list(headers._list)
    out._encoding = headers._encoding
    added = []
    for name, value in extra.items():
        raw = name.encode("ascii")
        added.append((raw, raw.lower(), value.encode("ascii")))
    for _, lower, _ in added:
        for _, present, _ in items:
            if present == lower:  # rare: the caller set one of these headers itself
                names = {n for _, n, _ in added}
                items[:] = [item for item in items if item[1] not in names]
                break
    items.extend(added)
    return out


def _slow_headers(headers: httpx.Headers, extra: dict[str, str]) -> httpx.Headers:
    out = headers.copy()
    out.update(extra)
    return out


def _fast_header(headers: httpx.Headers, name: bytes) -> str | None:
    """`headers.get(name)` (`name` lower-case), without deciding the encoding unless the
    header is present."""
    values = [value for _, key, value in headers._list if key == name]
    if not values:
        return None
    encoding = headers.encoding
    return ", ".join(value.decode(encoding) for value in values)


def _slow_header(headers: httpx.Headers, name: bytes) -> str | None:
    value: str | None = headers.get(name.decode("ascii"))
    return value


_HEADER_SAMPLES: list[tuple[Any, str | None]] = [
    ({"Host": "users", "Accept": "*/*"}, None),
    ([("X-Mesh-Attempt", "1"), ("a", "b"), ("x-mesh-attempt", "3")], "ascii"),
    ({b"caf\xc3\xa9": b"cr\xc3\xa8me", b"Content-Length": b"12"}, None),  # utf-8
    ([("content-length", "1"), ("Content-Length", "2")], "iso-8859-1")]


def _headers_self_check() -> tuple[Any, Any]:
    extras = [{"x-mesh-attempt": "2"}, {"x-mesh-deadline-ms": "900", "x-mesh-attempt": "2"}]
    try:
        for base, encoding in _HEADER_SAMPLES:
            for extra in extras:
                fast = _fast_headers(httpx.Headers(base, encoding), extra)
                slow = _slow_headers(httpx.Headers(base, encoding), extra)
                if (fast.raw != slow.raw or fast.encoding != slow.encoding
                        or list(fast.multi_items()) != list(slow.multi_items())):
                    raise AssertionError(extra)
            for name in (b"content-length", b"x-mesh-attempt", b"host"):
                original = httpx.Headers(base, encoding)
                if _fast_header(original, name) != _slow_header(original, name):
                    raise AssertionError(name)
    except Exception:  # pragma: no cover - only with an httpx whose internals changed
        _fell_back("header")
        return _slow_headers, _slow_header
    return _fast_headers, _fast_header


#: `with_headers(headers, extra)`: a copy of `headers` with `extra` set (as `update` does);
#: `header(headers, name)`: `headers.get(name)` for a lower-case byte name.
with_headers, header = _headers_self_check()


_DEADLINE = b"x-mesh-deadline-ms"  # context.DEADLINE_HEADER / ATTEMPT_HEADER (context
_ATTEMPT = b"x-mesh-attempt"       # imports httpx-free modules only; kept in step by a test)
_MESH_NAMES = frozenset((_DEADLINE, _ATTEMPT))
_lower_name = itemgetter(1)  # of httpx's (raw name, lower-case name, value) items


def attempt_headers(headers: httpx.Headers, deadline_ms: str, attempt: int) -> httpx.Headers:
    """A copy of `headers` for one attempt: the deadline header set and, from the second
    attempt on, the attempt header (absent means the first, as gRPC sends
    `grpc-previous-rpc-attempts` only on retries); any the caller's headers already carry
    are dropped. (`address_request` builds the same in one step with the request copy;
    this is the reference its self-check compares with.)"""
    out = headers.copy()
    out.pop("x-mesh-deadline-ms", None)
    out.pop("x-mesh-attempt", None)
    out["x-mesh-deadline-ms"] = deadline_ms
    if attempt > 1:
        out["x-mesh-attempt"] = str(attempt)
    return out




def _fast_address(request: httpx.Request, service: Service, endpoint: Endpoint,
                  headers: httpx.Headers | None = None, deadline_ms: str | None = None,
                  attempt: int = 1) -> httpx.Request:
    # A shallow copy made from a copy of the instance dict (one C-level copy; setting the
    # attributes one by one on an empty instance costs more): the parsed URL and the body
    # stream are shared (never mutated); the headers and extensions are the copy's own, since
    # an inner transport (say, a tracing wrapper) may add to them. This skips
    # `Request.__init__`, whose re-validation is most of a request copy's cost.
    scheme = service.scheme
    attrs = request.__dict__.copy()
    ref = attrs["url"]._uri_reference
    s, h, p = _origin(scheme, endpoint.host, endpoint.port)
    url = _new_object(httpx.URL)
    url._uri_reference = _new_tuple(type(ref), (s, ref.userinfo, h, p, ref.path, ref.query,
                                                ref.fragment))
    attrs["url"] = url
    if deadline_ms is not None:  # an attempt: `attempt_headers`, on httpx's item list
        original = request.headers
        items = original._list
        if _MESH_NAMES.isdisjoint(map(_lower_name, items)):
            items = items.copy()
        else:  # a forwarded request's headers
            items = [i for i in items if i[1] not in _MESH_NAMES]
        items.append((_DEADLINE, _DEADLINE, deadline_ms.encode("ascii")))
        if attempt > 1:
            items.append((_ATTEMPT, _ATTEMPT, str(attempt).encode("ascii")))
        headers = _new_object(httpx.Headers)
        headers._list = items
        headers._encoding = original._encoding
        attrs["headers"] = headers
    else:
        attrs["headers"] = with_headers(request.headers, {}) if headers is None else headers
    extensions = attrs["extensions"] = attrs["extensions"].copy()
    name = service.name
    if ref.scheme == "https" and (scheme == "http" or name != ref.host):
        name = _https_name(ref.host, service)  # the app asked for TLS (docs/security.md)
    if scheme == "https" and "sni_hostname" not in extensions:
        extensions["sni_hostname"] = name  # the destination's name
    out = _new_object(httpx.Request)
    out.__dict__ = attrs
    return out


def _slow_address(request: httpx.Request, service: Service, endpoint: Endpoint,
                  headers: httpx.Headers | None = None, deadline_ms: str | None = None,
                  attempt: int = 1) -> httpx.Request:
    if deadline_ms is not None:
        headers = attempt_headers(request.headers, deadline_ms, attempt)
    extensions = dict(request.extensions)
    name, host = service.name, request.url.host
    if request.url.scheme == "https" and (service.scheme == "http" or name != host):
        name = _https_name(host, service)
    if service.scheme == "https" and "sni_hostname" not in extensions:
        extensions["sni_hostname"] = name
    out = httpx.Request(request.method,
                        _slow_url(request.url, service.scheme, endpoint.host, endpoint.port),
                        headers=request.headers.copy() if headers is None else headers,
                        stream=request.stream, extensions=extensions)
    if hasattr(request, "_content"):
        out._content = request._content
    return out


def _fast_host(request: httpx.Request) -> str:
    host: str = request.url._uri_reference.host
    return host


def _slow_host(request: httpx.Request) -> str:
    return request.url.raw_host.decode("ascii")


def _address_self_check() -> tuple[Any, Any]:
    from ..discovery.endpoint import Endpoint  # (imports nothing with I/O)

    class _Named:  # the two fields of `Service` used here
        def __init__(self, scheme: str) -> None:
            self.scheme, self.name = scheme, "users"

    try:
        for text, scheme, host, port in [("http://users/v1/x?a=1#f", "http", "127.0.0.2", 8001),
                                         ("https://users/", "https", "::1", 443)]:
            request = httpx.Request("POST", text, content=b"abc", headers={"X-A": "1"},
                                    extensions={"timeout": {"read": 1.0}})
            service, endpoint = _Named(scheme), Endpoint(host, port)
            for args in ((), (None, "900", 1), (None, "900", 3)):
                fast = _fast_address(request, service, endpoint, *args)  # type: ignore[arg-type]
                slow = _slow_address(request, service, endpoint, *args)  # type: ignore[arg-type]
                if (fast.url != slow.url or str(fast.url) != str(slow.url)
                        or fast.headers.raw != slow.headers.raw or fast.method != slow.method
                        or fast.extensions != slow.extensions
                        or fast.stream is not request.stream or fast.content != slow.content
                        or vars(fast).keys() != vars(request).keys()
                        or fast.headers is request.headers
                        or fast.extensions is request.extensions
                        or _fast_host(fast) != _slow_host(slow)):
                    raise AssertionError(text)
        for base, encoding in _HEADER_SAMPLES:
            for attempt in (1, 2):
                request = httpx.Request("GET", "http://users/",
                                        headers=httpx.Headers(base, encoding))
                service, endpoint = _Named("http"), Endpoint("127.0.0.2", 80)
                fast_h = _fast_address(request, service, endpoint,  # type: ignore[arg-type]
                                       None, "900", attempt).headers
                slow_h = attempt_headers(request.headers, "900", attempt)
                if (fast_h.raw != slow_h.raw or fast_h.encoding != slow_h.encoding
                        or list(fast_h.multi_items()) != list(slow_h.multi_items())):
                    raise AssertionError(base)
        for text in ("http://Users/", "http://xn--bcher-kva.example/", "http://[::1]:80/"):
            request = httpx.Request("GET", text)
            if _fast_host(request) != _slow_host(request):
                raise AssertionError(text)
    except Exception:  # pragma: no cover - only with an httpx whose internals changed
        _fell_back("request copy")
        return _slow_address, _slow_host
    return _fast_address, _fast_host


#: `address_request(request, service, endpoint, headers=None)`: a copy of `request` sent to
#: `endpoint`: the URL names the endpoint, the `Host` header keeps the logical name, and for
#: https the TLS name (`sni_hostname`) is the name of the service sent to (after a split, the
#: destination's), so the certificate is verified against the service name, not the IP.
#: For a request the app sent over https the trust rule applies (`policy.trust.https_name`).
#: The body stream is shared, not copied; `headers` (a new `Headers`) replace the copy's,
#: else with `deadline_ms` the copy gets `attempt_headers(request.headers, deadline_ms,
#: attempt)` (built in the same step), else a copy of the request's.
#: `host_key(request)`: the request URL's host as parsed (for an IDNA name, its encoded
#: form): `url.host` without the property's decoding step (a per-host cache's key).
address_request, host_key = _address_self_check()
