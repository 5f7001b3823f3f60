"""The baseline: a plain httpx client with hand-written round robin, as teams write it
without a mesh. Same endpoints, same timeout, no retries, no breakers, no ejection, no
latency awareness, and no way to shift traffic without a redeploy."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence

import httpx


class RoundRobinClient:
    """Each service's endpoints in turn, by hand. Not thread-safe: one event loop only.

    Usage:
    ```python
    client = RoundRobinClient({"users": ["127.0.0.2:8001", "127.0.0.3:8001"]}, timeout=2.0)
    response = await client.get("users", "/users/42")
    await client.aclose()
    ```
    """

    name = "round-robin"

    def __init__(self, endpoints: Mapping[str, Sequence[str]], timeout: float) -> None:
        self._cycles: dict[str, Iterator[str]] = {
            service: itertools.cycle(list(addresses)) for service, addresses in endpoints.items()}
        self._client = httpx.AsyncClient(timeout=timeout)

    async def get(self, service: str, path: str) -> httpx.Response:
        address = next(self._cycles[service])
        return await self._client.get(f"http://{address}{path}", headers={"Host": service})

    async def aclose(self) -> None:
        await self._client.aclose()

    def __repr__(self) -> str:
        return f"<RoundRobinClient services={sorted(self._cycles)}>"
