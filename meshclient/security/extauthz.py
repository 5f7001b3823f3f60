"""`ExtAuthz`: a check that asks an HTTP authorization service, as Envoy's `ext_authz`
filter does with an HTTP service (Istio's `envoyExtAuthzHttp` provider).

The check request has the original method and the path (with `path_prefix` before it and
the query after it), the `host`, `authorization` and configured headers, and no body. A 2xx
answer allows the request, adding the answer's `headers_to_upstream_on_allow`; any other
answer denies it with the answer's status, headers and body. When the service cannot be
reached or does not answer within `timeout`, `fail_open` decides: allow, or deny with
`status_on_error`. Decisions the service made (not failures) are reused for `cache_ttl`,
keyed by the caller's principal and the exact check request.

The decision is pure (`_decide`, `_failed`) and shared; only sending differs between the
blocking (`check_sync`) and awaiting (`check_async`) halves. Calling the object itself
(`ext(view)`) picks the half for the context: awaitable in a running event loop, a
verdict otherwise, so it is a check function wherever one is accepted:

```python
ext = ExtAuthz(ExtAuthzHttpPolicy(url="http://127.0.0.1:9191", cache_ttl=5.0))
app = MeshMiddleware(app, check=ext)               # inbound
client = httpx.Client(transport=MeshTransport(check=ext))   # outbound
```
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable
from typing import Any

import anyio
import anyio.lowlevel
import httpx

from .._clock import CLOCK
from .._types import Clock
from ..policy import ExtAuthzHttpPolicy
from .checks import Allow, Deny, RequestView, Verdict

logger = logging.getLogger("meshclient.security")

#: Never copied from the service's answer to the caller (hop-by-hop and framing).
_NOT_FORWARDED = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer",
                            "upgrade", "proxy-authenticate", "proxy-authorization",
                            "content-length", "content-encoding", "host"})
#: Most bytes of a denying answer's body passed to the caller.
MAX_BODY = 64 * 1024

_Key = tuple[str | None, str, str, tuple[tuple[str, str], ...]]


class ExtAuthz:
    """A check backed by an HTTP authorization service. Thread- and task-safe.

    **Parameters:**

    * **config** - the service and its options (`ExtAuthzHttpPolicy`).
    * **name** - shown in logs (the provider's name).
    * **clock** - for the decision cache's TTL.
    """

    def __init__(self, config: ExtAuthzHttpPolicy, *, name: str = "ext_authz",
                 clock: Clock = CLOCK) -> None:
        self.config = config
        self.name = name
        self._clock = clock
        self._base = config.base_url + config.path_prefix
        self._include = ("authorization", *(h.lower() for h in
                                            config.include_request_headers_in_check))
        self._upstream = {h.lower() for h in config.headers_to_upstream_on_allow}
        self._downstream = {h.lower() for h in config.headers_to_downstream_on_deny}
        self._ttl_ns = int(config.cache_ttl * 1e9)
        self._cache: OrderedDict[_Key, tuple[int, Verdict]] = OrderedDict()
        self._lock = threading.Lock()
        self._timeout = httpx.Timeout(config.timeout)
        self._client: httpx.Client | None = None
        self._aclient: tuple[object, httpx.AsyncClient] | None = None

    # -- the shared, pure half ----------------------------------------------------------
    def _request(self, view: RequestView) -> tuple[_Key, str, dict[str, str]]:
        """The cache key, URL and headers of the check request for `view`."""
        target = view.path + (f"?{view.query}" if view.query else "")
        headers = {name: view.headers[name] for name in self._include if name in view.headers}
        if view.host:
            headers["host"] = view.host
        caller = view.source_principal or view.request_principal
        key = (caller, view.method, target, tuple(sorted(headers.items())))
        return key, self._base + target, headers

    def _cached(self, key: _Key) -> Verdict | None:
        if not self._ttl_ns:
            return None
        with self._lock:
            hit = self._cache.get(key)
            if hit is None:
                return None
            if hit[0] <= self._clock.now_ns():
                del self._cache[key]
                return None
            self._cache.move_to_end(key)
            return hit[1]

    def _decide(self, key: _Key, response: httpx.Response, body: bytes) -> Verdict:
        """The service's answer as a verdict (remembered for `cache_ttl`)."""
        verdict: Verdict
        if 200 <= response.status_code < 300:
            verdict = Allow(tuple((k, v) for k, v in response.headers.multi_items()
                                  if k in self._upstream))
        else:
            keep = self._downstream
            verdict = Deny(response.status_code,
                           tuple((k, v) for k, v in response.headers.multi_items()
                                 if ((k in keep) if keep else (k not in _NOT_FORWARDED))),
                           body)
        if self._ttl_ns:
            with self._lock:
                self._cache[key] = (self._clock.now_ns() + self._ttl_ns, verdict)
                self._cache.move_to_end(key)
                while len(self._cache) > self.config.cache_size:
                    self._cache.popitem(last=False)
        return verdict

    def _failed(self, exc: BaseException) -> Verdict:
        """The service could not be asked: `fail_open` decides (never cached)."""
        logger.warning("ext_authz %s: the authorization service failed (%s: %s); %s",
                       self.name, type(exc).__name__, exc,
                       "allowing (fail_open)" if self.config.fail_open else "denying")
        if self.config.fail_open:
            return Allow()
        return Deny(self.config.status_on_error)

    # -- the blocking half --------------------------------------------------------------
    def check_sync(self, view: RequestView) -> Verdict:
        """Ask the service (blocking), or answer from the cache."""
        key, url, headers = self._request(view)
        hit = self._cached(key)
        if hit is not None:
            return hit
        client = self._client
        if client is None:
            with self._lock:
                client = self._client = self._client or httpx.Client(timeout=self._timeout)
        deadline = time.monotonic() + self.config.timeout
        try:
            with client.stream(view.method, url, headers=headers) as response:
                body = _read_sync(response, deadline)
        except httpx.HTTPError as exc:
            return self._failed(exc)
        return self._decide(key, response, body)

    # -- the awaiting half --------------------------------------------------------------
    async def check_async(self, view: RequestView) -> Verdict:
        """Ask the service (awaiting, held to `timeout` in all), or answer from the cache."""
        key, url, headers = self._request(view)
        hit = self._cached(key)
        if hit is not None:
            return hit
        client = self._async_client()
        try:
            with anyio.fail_after(self.config.timeout):
                async with client.stream(view.method, url, headers=headers) as response:
                    body = await _read_async(response)
        except (httpx.HTTPError, TimeoutError) as exc:
            return self._failed(exc)
        return self._decide(key, response, body)

    def _async_client(self) -> httpx.AsyncClient:
        """One client per event loop (a client's connections belong to the loop that
        opened them)."""
        token = anyio.lowlevel.current_token()
        held = self._aclient
        if held is None or held[0] is not token:
            held = self._aclient = (token, httpx.AsyncClient(timeout=self._timeout))
        return held[1]

    def __call__(self, view: RequestView) -> Verdict | Awaitable[Verdict]:
        """A verdict, or an awaitable of one inside a running event loop."""
        try:
            anyio.lowlevel.current_token()
        except RuntimeError:
            return self.check_sync(view)
        return self.check_async(view)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    async def aclose(self) -> None:
        held, self._aclient = self._aclient, None
        if held is not None:
            await held[1].aclose()
        self.close()

    def __repr__(self) -> str:
        return (f"<ExtAuthz {self.name} {self._base} timeout={self.config.timeout:g}s "
                f"cached={len(self._cache)}>")


def _read_sync(response: httpx.Response, deadline: float) -> bytes:
    """The body (at most `MAX_BODY`); a body still arriving at `deadline` is a timeout."""
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) >= MAX_BODY:
            break
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout("the authorization service's answer is too slow")
    return bytes(body[:MAX_BODY])


async def _read_async(response: httpx.Response) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= MAX_BODY:
            break
    return bytes(body[:MAX_BODY])


def from_provider(provider: Any, clock: Clock = CLOCK) -> ExtAuthz:
    """The check of a policy's `ExtensionProvider`."""
    return ExtAuthz(provider.ext_authz_http, name=provider.name, clock=clock)
