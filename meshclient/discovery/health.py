"""Active health checks (`health: {path, interval, timeout}`).

Every `interval`, `GET <scheme>://<endpoint><path>` on each current endpoint, directly (not
through the mesh), bounded by `timeout`; a 2xx passes, anything else (status, refused
connection, timeout) fails. `unhealthy_after` failures in a row mark an endpoint unhealthy,
`healthy_after` passes in a row mark it healthy again. Each change of the unhealthy set is
reported to `on_change`, which marks the balancer's endpoint state (treated as ejected) and
re-chooses the SRV priority group (`_select.py`).

New endpoints start healthy (checks confirm, they do not gate). Checks of one service run
one after another on one thread (`meshclient-health-<service>`, stopped and joined by
`close()`, or at interpreter exit), so a service with n endpoints spends at most n x timeout per round.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import httpx

from .. import _fork
from ..policy import HealthPolicy
from ._threads import start_thread
from .endpoint import Endpoint

logger = logging.getLogger("meshclient.discovery")


class HealthChecker:
    """**Parameters:** `service` (logical name: the `Host` header and TLS name), `policy`,
    `scheme`, `endpoints` (returns the current set; called on the checker's thread),
    `on_change(unhealthy_keys)`."""

    def __init__(self, service: str, policy: HealthPolicy, scheme: str,
                 endpoints: Callable[[], tuple[Endpoint, ...]],
                 on_change: Callable[[frozenset[str]], None]) -> None:
        self.service = service
        self.policy = policy
        self.scheme = scheme
        self._endpoints = endpoints
        self.on_change = on_change
        self._fails: dict[str, int] = {}
        self._passes: dict[str, int] = {}
        self.unhealthy: frozenset[str] = frozenset()
        self.rounds = 0
        self._stop = threading.Event()
        self._client = httpx.Client(timeout=policy.timeout, trust_env=False)
        self._thread = start_thread(self, self._run, f"meshclient-health-{service}")
        self._restart = False
        _fork.track(self)

    def _after_fork_in_child(self) -> None:
        """The thread is gone and the pooled connections are the parent's (no I/O here:
        the new client is made on first use)."""
        self._restart = not self._stop.is_set()
        self._stop = threading.Event()

    def _resume_after_fork(self) -> None:
        if self._restart:
            self._restart = False
            self._client = httpx.Client(timeout=self.policy.timeout, trust_env=False)
            self._thread = start_thread(self, self._run, f"meshclient-health-{self.service}")

    def check(self, endpoint: Endpoint) -> bool:
        host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
        url = f"{self.scheme}://{host}:{endpoint.port}{self.policy.path}"
        extensions = {"sni_hostname": self.service} if self.scheme == "https" else {}
        try:
            response = self._client.get(url, headers={"Host": self.service},
                                        extensions=extensions)
            return 200 <= response.status_code < 300
        except httpx.HTTPError:
            return False

    def _round(self) -> None:
        endpoints = self._endpoints()
        keys = {e.key for e in endpoints}
        unhealthy = set(self.unhealthy & keys)
        for endpoint in endpoints:
            if self._stop.is_set():
                return
            key = endpoint.key
            if self.check(endpoint):
                self._fails[key] = 0
                self._passes[key] = self._passes.get(key, 0) + 1
                if key in unhealthy and self._passes[key] >= self.policy.healthy_after:
                    unhealthy.discard(key)
                    logger.info("%s endpoint %s passes its health check again",
                                self.service, key)
            else:
                self._passes[key] = 0
                self._fails[key] = self._fails.get(key, 0) + 1
                if key not in unhealthy and self._fails[key] >= self.policy.unhealthy_after:
                    unhealthy.add(key)
                    logger.warning("%s endpoint %s failed %d health checks; unhealthy",
                                   self.service, key, self._fails[key])
        for table in (self._fails, self._passes):
            for key in set(table) - keys:
                del table[key]
        self.rounds += 1
        if unhealthy != self.unhealthy:
            self.unhealthy = frozenset(unhealthy)
            self.on_change(self.unhealthy)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._round()
                except Exception:  # a bug here must not end health checking
                    logger.exception("health checks of %s failed", self.service)
                if self._stop.wait(self.policy.interval):
                    return
        finally:
            self._client.close()

    def close(self, wait: bool = True) -> None:
        self._stop.set()
        if wait and self._thread is not threading.current_thread():
            self._thread.join(10)

    def __repr__(self) -> str:
        return f"<HealthChecker {self.service} unhealthy={sorted(self.unhealthy)}>"
