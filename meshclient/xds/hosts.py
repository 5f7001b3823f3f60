"""Which hosts go through xDS, the listener each one asks for, and the bounded wait of a
host's first requests.

A request whose host matches one of `MESHCLIENT_XDS_HOSTS` (`*` matches any characters,
case-insensitive) subscribes the listener `HOST:PORT` — the port as in the URL, 80 or 443
when absent — exactly as proxyless gRPC names the listener of `xds:///HOST:PORT`. Its first
requests wait (at most `wait_s` from the first one, `MESHCLIENT_XDS_WAIT`) until the host's
service is in the policy or the server says the listener does not exist; then (or when the
wait runs out) a host without a service passes through to the inner transport.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable

_CACHE_MAX = 1024


def listener_name(host: str, port: int | None, scheme: str) -> str:
    """The listener a request asks for: `host:port`, 80/443 by scheme when absent."""
    if port is None:
        port = 443 if scheme == "https" else 80
    return f"{host.lower()}:{port}"


class HostPatterns:
    """Compiled `MESHCLIENT_XDS_HOSTS`; `matches()` is a dict read once a host was seen."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(p.lower() for p in patterns)
        parts = ("".join(".*" if c == "*" else re.escape(c) for c in p) for p in self.patterns)
        self._regex = re.compile("^(?:" + "|".join(parts) + ")$")
        self._seen: dict[str, bool] = {}

    def matches(self, host: str) -> bool:
        seen = self._seen.get(host)
        if seen is None:
            seen = bool(self._regex.match(host.lower().rstrip(".")))
            if len(self._seen) >= _CACHE_MAX:
                self._seen = {}
            self._seen[host] = seen
        return seen

    def __repr__(self) -> str:
        return f"<HostPatterns {','.join(self.patterns)}>"


class ListenerWaiter:
    """The first requests of one listener wait on this (an `EndpointWaiter`): ready once the
    host's service is in force or the listener does not exist; waited on for at most
    `wait_s` after its creation, in all."""

    def __init__(self, listener: str, host: str, wait_s: float) -> None:
        self.listener = listener
        self.host = host
        self.until = time.monotonic() + wait_s
        self._event = threading.Event()

    @property
    def ready(self) -> bool:
        return self._event.is_set()

    def expired(self) -> bool:
        return time.monotonic() >= self.until

    @property
    def timeout_s(self) -> float:
        return max(0.0, self.until - time.monotonic())

    def wait(self, timeout_s: float) -> bool:
        return self._event.wait(max(0.0, min(timeout_s, self.until - time.monotonic())))

    def set(self) -> None:
        self._event.set()

    def __repr__(self) -> str:
        return f"<ListenerWaiter {self.listener} ready={self.ready}>"
