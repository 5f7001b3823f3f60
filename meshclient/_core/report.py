"""What a mesh call tells its caller about itself: `response.extensions["meshclient"]` on
every response the mesh returns, and a note (PEP 678) on the error it raises."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import httpx

#: The key of `response.extensions` holding the call's `CallInfo`.
EXTENSION = "meshclient"
#: The attribute of an error raised by a mesh call holding its attempt count.
ATTEMPTS_ATTR = "meshclient_attempts"


class CallInfo(NamedTuple):
    """How a mesh response was obtained (immutable). `service`: the logical service that
    answered (the routing destination); `endpoint`: "host:port" of the endpoint whose
    response this is; `attempts`: how many attempts the call made in all (hedges
    included), 1 for the usual call."""

    service: str
    endpoint: str
    attempts: int


def stamp(response: httpx.Response, service: str, endpoint: str,
          attempts: int) -> httpx.Response:
    """Put the call's `CallInfo` on `response` and return it."""
    response.extensions[EXTENSION] = CallInfo(service, endpoint, attempts)
    return response


def annotate(error: BaseException, service: str, attempts: int,
             endpoints: Iterable[str]) -> BaseException:
    """Add a note naming the service, the attempts and the endpoints tried to the error
    the caller will see (once; Python 3.11+, where exceptions have `add_note`), and return
    it."""
    try:  # for the access log's attempt count (`telemetry.access_log`)
        if ATTEMPTS_ATTR not in error.__dict__:
            error.__dict__[ATTEMPTS_ATTR] = attempts
    except AttributeError:  # pragma: no cover - every exception class has a __dict__
        pass
    add_note = getattr(error, "add_note", None)
    notes = getattr(error, "__notes__", ())
    if add_note is not None and not any(n.startswith("meshclient:") for n in notes):
        tried = ", ".join(sorted(endpoints)) or "none"
        add_note(f"meshclient: service {service!r}, {attempts} attempt"
                 f"{'' if attempts == 1 else 's'}, endpoints tried: {tried}")
    return error
