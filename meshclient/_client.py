"""httpx clients already wired to a mesh transport."""

from __future__ import annotations

from typing import Any

import httpx

from .policy import Policy, PolicyStore
from .security.checks import CheckFn
from .transport import AsyncMeshTransport, MeshTransport

_TRANSPORT_ARGS = ("verify", "cert", "http1", "http2", "limits", "trust_env", "proxy")
#: Given to the mesh transport only: httpx.Client would mount its own transport for a
#: proxy, and requests would bypass the mesh.
_TRANSPORT_ONLY = ("proxy",)


def _split(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The inner transports' arguments, taken from `kwargs` (those only they use removed)."""
    out = {k: kwargs[k] for k in _TRANSPORT_ARGS if k in kwargs}
    for k in _TRANSPORT_ONLY:
        kwargs.pop(k, None)
    return out


class Client(httpx.Client):
    """`httpx.Client` whose transport is a `MeshTransport`.

    **Parameters:** `policy` (a `Policy`, `PolicyStore` or `None` for the process default),
    `transport` (the inner transport; default built from `verify`, `cert`, `http1`, `http2`,
    `limits`, `trust_env`, `proxy`: one per endpoint of a service, and one for every other
    host), `check` (asked about every request before it leaves; see `MeshTransport`), and
    every other `httpx.Client` argument.
    """

    def __init__(self, *, policy: Policy | PolicyStore | None = None,
                 transport: httpx.BaseTransport | None = None, check: CheckFn | None = None,
                 **kwargs: Any) -> None:
        mesh = MeshTransport(policy, inner=transport, check=check, **_split(kwargs))
        super().__init__(transport=mesh, **kwargs)
        self.mesh = mesh


class AsyncClient(httpx.AsyncClient):
    """`httpx.AsyncClient` whose transport is an `AsyncMeshTransport` (see `Client`)."""

    def __init__(self, *, policy: Policy | PolicyStore | None = None,
                 transport: httpx.AsyncBaseTransport | None = None, check: CheckFn | None = None,
                 **kwargs: Any) -> None:
        mesh = AsyncMeshTransport(policy, inner=transport, check=check, **_split(kwargs))
        super().__init__(transport=mesh, **kwargs)
        self.mesh = mesh
