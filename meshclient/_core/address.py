"""Re-address a logical request to one endpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from ..discovery._base import Endpoint
    from ..policy import Service


def address_request(request: httpx.Request, service: Service, endpoint: Endpoint,
                    headers: dict[str, str] | None = None) -> httpx.Request:
    """A copy of `request` sent to `endpoint`: the URL names the endpoint, the `Host` header
    keeps the logical name, and for https the TLS name (`sni_hostname`) is the logical one,
    so the certificate is verified against the service name, not the IP.

    The body stream is shared, not copied; extra `headers` are set on the copy only.
    """
    url = request.url.copy_with(scheme=service.scheme, host=endpoint.host, port=endpoint.port)
    extensions = dict(request.extensions)
    if service.scheme == "https" and "sni_hostname" not in extensions:
        extensions["sni_hostname"] = request.url.host
    out_headers = request.headers.copy()
    if headers:
        out_headers.update(headers)
    return httpx.Request(request.method, url, headers=out_headers, stream=request.stream,
                         extensions=extensions)
