"""The HTTP(S) control source: one conditional (or long-polling) GET, bounded in time and size.

TLS is verified (httpx's default CA bundle, or `verify=` a path / `ssl.SSLContext`);
`token` goes out as `Authorization: Bearer …`.

Bounds: httpx's timeouts are per read, so an endpoint dripping its headers or body a byte a
second would hold a fetch forever. Each fetch therefore runs under a wall-clock deadline
(`plan.timeout_s`, total): a timer shuts the connection's socket down when it passes, which
wakes the blocked read at once. `abort()` does the same on demand (`close()` of the
refresher). The pool holds one connection, whose socket is learnt from httpcore's `trace`
extension as it connects. A body over `MAX_BODY_BYTES` is refused while it is read: reading
stops past the limit, so a runaway endpoint cannot fill memory.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from .errors import ControlError
from .refresh import FetchPlan

MAX_BODY_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Fetched:
    """An answer: status (200 or 304), lower-cased headers, body (empty for 304)."""

    status: int
    headers: dict[str, str]
    body: bytes


def _shutdown(sock: socket.socket | None) -> None:
    if sock is None:
        return
    # the plain socket call: ssl.SSLSocket.shutdown would also drop its TLS state, which the
    # reading thread still uses; OSError: already closed
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class HttpSource:
    """Blocking fetches of one URL, one at a time (one `RefreshThread`); `abort()` may be
    called from any thread."""

    def __init__(self, url: str, *, token: str | None = None,
                 verify: bool | str | ssl.SSLContext = True) -> None:
        self.url = url
        headers = {"Accept": "application/json, application/toml;q=0.9, */*;q=0.1"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if isinstance(verify, str):  # a CA bundle path (httpx deprecates passing it as str)
            verify = ssl.create_default_context(cafile=verify)
        self._client = httpx.Client(
            headers=headers, verify=verify, trust_env=False, follow_redirects=False,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))
        self._sock: socket.socket | None = None  # the pool's one connection
        self._aborted = False
        self._lock = threading.Lock()  # _sock and _aborted; held for no I/O

    def _trace(self, event: str, info: dict[str, Any]) -> None:
        if event not in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        with self._lock:
            self._sock = sock
            aborted = self._aborted
        if aborted:  # the deadline passed while connecting
            _shutdown(sock)

    def forget_connection(self) -> None:
        """In a forked child: the connection is the parent's; never shut it down."""
        self._lock = threading.Lock()
        self._sock = None

    def abort(self) -> None:
        """End the fetch in flight now (its read fails); the next fetch starts afresh."""
        with self._lock:
            self._aborted = True
            sock = self._sock
        _shutdown(sock)

    def fetch(self, plan: FetchPlan) -> Fetched:
        """Raise `ControlError` for anything but a 200 (with a bounded body) or a 304, and
        when the fetch takes longer than `plan.timeout_s` in all."""
        with self._lock:
            self._aborted = False
        timer = threading.Timer(plan.timeout_s, self.abort)
        timer.daemon = True
        timer.start()
        deadline = time.monotonic() + plan.timeout_s
        try:
            return self._fetch(plan, deadline)
        except ControlError:
            raise
        except Exception as exc:  # httpx errors, and whatever an aborted socket raises
            if self._aborted:
                raise ControlError(f"{self.url} did not answer within "
                                   f"{plan.timeout_s:g}s") from exc
            raise ControlError(f"{self.url} failed: {exc!r}") from exc
        finally:
            timer.cancel()

    def _fetch(self, plan: FetchPlan, deadline: float) -> Fetched:
        with self._client.stream("GET", self.url, headers=plan.headers,
                                 params=plan.params or None,
                                 timeout=httpx.Timeout(plan.timeout_s),
                                 extensions={"trace": self._trace}) as response:
            headers = {k.lower(): v for k, v in response.headers.items()}
            if response.status_code == 304:
                return Fetched(304, headers, b"")
            if response.status_code != 200:
                raise ControlError(f"{self.url} answered {response.status_code}")
            declared = headers.get("content-length", "")
            if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
                raise ControlError(f"{self.url}: body of {declared} bytes is over the "
                                   f"{MAX_BODY_BYTES}-byte limit")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    raise ControlError(f"{self.url}: body is over the {MAX_BODY_BYTES}-"
                                       "byte limit")
                if time.monotonic() > deadline:
                    raise ControlError(f"{self.url} did not answer within "
                                       f"{plan.timeout_s:g}s")
            return Fetched(200, headers, bytes(body))

    def close(self) -> None:
        self.abort()
        self._client.close()

    def __repr__(self) -> str:
        return f"<HttpSource {self.url}>"
