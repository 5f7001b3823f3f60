"""Re-address a logical request to one endpoint.

This runs on every request, so it avoids `URL.copy_with` (which re-parses and re-validates
the whole URL, the largest single cost of the mesh path): the endpoint's part of the URL
(scheme, host, port) is normalised by httpx once per endpoint and cached, and each request
only swaps those three components of its already-parsed URL. If httpx's URL internals ever
differ from what this expects, a self-check at import turns the shortcut off and
`copy_with` is used instead.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from ..discovery._base import Endpoint
    from ..policy import Service


@lru_cache(maxsize=4096)
def _origin(scheme: str, host: str, port: int) -> tuple[str, str, int | None]:
    """(scheme, host, port) as httpx normalises them (lower-case host, default port None)."""
    ref = httpx.URL(scheme=scheme, host=host, port=port)._uri_reference
    return ref.scheme, ref.host, ref.port


def _fast_url(url: httpx.URL, scheme: str, host: str, port: int) -> httpx.URL:
    s, h, p = _origin(scheme, host, port)
    out = object.__new__(httpx.URL)
    out._uri_reference = url._uri_reference._replace(scheme=s, host=h, port=p)
    return out


def _slow_url(url: httpx.URL, scheme: str, host: str, port: int) -> httpx.URL:
    return url.copy_with(scheme=scheme, host=host, port=port)


def _self_check() -> Any:
    samples = [("http://users/v1/x?a=1&b=%20#frag", "http", "127.0.0.2", 8001),
               ("https://u:p@users:8443/", "https", "::1", 443),
               ("http://Users/", "https", "Example.COM", 80)]
    try:
        for text, scheme, host, port in samples:
            url = httpx.URL(text)
            fast, slow = _fast_url(url, scheme, host, port), _slow_url(url, scheme, host, port)
            if str(fast) != str(slow) or fast != slow or fast.port != slow.port:
                return _slow_url
    except Exception:  # pragma: no cover - only with an httpx whose internals changed
        return _slow_url
    return _fast_url


#: `endpoint_url(url, scheme, host, port)`: `url` re-addressed to the endpoint.
endpoint_url = _self_check()


def address_request(request: httpx.Request, service: Service, endpoint: Endpoint,
                    headers: dict[str, str] | None = None) -> httpx.Request:
    """A copy of `request` sent to `endpoint`: the URL names the endpoint, the `Host` header
    keeps the logical name, and for https the TLS name (`sni_hostname`) is the logical one,
    so the certificate is verified against the service name, not the IP.

    The body stream is shared, not copied; extra `headers` are set on the copy only.
    """
    scheme = service.scheme
    # A shallow copy: the parsed URL and the body stream are shared (never mutated); the
    # headers are copied, since an inner transport (say, a tracing wrapper) may add to them.
    # This skips `Request.__init__`, whose re-validation is most of a request copy's cost.
    out = object.__new__(httpx.Request)
    out.__dict__.update(request.__dict__)
    out.url = endpoint_url(request.url, scheme, endpoint.host, endpoint.port)
    out.extensions = dict(request.extensions)
    if scheme == "https" and "sni_hostname" not in out.extensions:
        out.extensions["sni_hostname"] = request.url.host
    out.headers = request.headers.copy()
    if headers:
        out.headers.update(headers)
    return out
