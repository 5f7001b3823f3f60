"""Drive the sync or the async transport through one blocking API, so every behaviour test
runs through both shells. The async client lives in an anyio blocking portal (a real event
loop on a thread) for the caller's whole life, so its connection pool is reused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio.from_thread
import httpx

import meshclient
from meshclient.policy import Policy, PolicyStore


class Caller:
    def __init__(self, kind: str, policy: Policy | PolicyStore | None,
                 client_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """`client_kwargs` go to the httpx client, `kwargs` to the mesh transport."""
        self.kind = kind
        client_kwargs = client_kwargs or {}
        self._portal_cm: Any = None
        if kind == "sync":
            self.transport: Any = meshclient.MeshTransport(policy, **kwargs)
            self.client: Any = httpx.Client(transport=self.transport, **client_kwargs)
        else:
            self._portal_cm = anyio.from_thread.start_blocking_portal()
            self.portal = self._portal_cm.__enter__()
            self.transport = meshclient.AsyncMeshTransport(policy, **kwargs)
            self.client = httpx.AsyncClient(transport=self.transport, **client_kwargs)

    @property
    def store(self) -> PolicyStore:
        return self.transport.store  # type: ignore[no-any-return]

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        if self.kind == "sync":
            return self.client.request(method, url, **kwargs)  # type: ignore[no-any-return]
        return self.portal.call(lambda: self.client.request(method, url, **kwargs))  # type: ignore[no-any-return]

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def stream_lines(self, method: str, url: str, **kwargs: Any) -> list[str]:
        if self.kind == "sync":
            with self.client.stream(method, url, **kwargs) as r:
                return list(r.iter_lines())

        async def run() -> list[str]:
            async with self.client.stream(method, url, **kwargs) as r:
                return [line async for line in r.aiter_lines()]

        return self.portal.call(run)  # type: ignore[no-any-return]

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(client, *args)` (awaited for async) and return its result."""
        if self.kind == "sync":
            return fn(self.client, *args)
        return self.portal.call(fn, self.client, *args)

    def close(self) -> None:
        if self.kind == "sync":
            self.client.close()
        else:
            self.portal.call(self.client.aclose)
            self._portal_cm.__exit__(None, None, None)
