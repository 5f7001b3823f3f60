"""Dark traffic: what a mirror copy is, and the gate that bounds copies in flight.

A copy goes to the mirror service with `context.MIRROR_HEADER` set and `Host` naming the
mirror service; it is sent once (never retried) by the shell in the background, and its
result is read and dropped. A request whose body is a stream (not already in memory)
cannot be replayed and is not mirrored. A request that is itself a mirror copy is never
mirrored again (no mirror loops).
"""

from __future__ import annotations

import httpx

from ..context import MIRROR_HEADER
from ..policy import Service

#: Bound on a copy's whole exchange, so a hanging mirror target frees its slot.
MIRROR_TIMEOUT_S = 5.0


def replayable_body(request: httpx.Request) -> bytes | None:
    """The body when it is already in memory, else None (a stream cannot be sent twice)."""
    try:
        return request.content
    except httpx.RequestNotRead:
        return None


def mirror_copy(request: httpx.Request, target: Service) -> httpx.Request | None:
    """The copy for `target`, or None when the body cannot be replayed."""
    body = replayable_body(request)
    if body is None:
        return None
    headers = request.headers.copy()
    headers["Host"] = target.name
    headers[MIRROR_HEADER] = "1"
    timeout = {"connect": MIRROR_TIMEOUT_S, "read": MIRROR_TIMEOUT_S,
               "write": MIRROR_TIMEOUT_S, "pool": MIRROR_TIMEOUT_S}
    return httpx.Request(request.method, request.url.copy_with(host=target.name),
                         headers=headers, content=body, extensions={"timeout": timeout})
