"""`XdsClient`: the ADS stream to the bootstrap's server, in one daemon thread, keeping a
`PolicyStore` in step with the listeners, routes, clusters and endpoints it serves.

Requests never touch gRPC: they read `store.current`, which this client replaces whole
(`merge.compose`: xDS for what it sets, the local policy for the rest). A response is
decoded and validated (`protocol.receive`), translated, composed and swapped in, and only
then ACKed; anything refused on the way is NACKed with the error text while the last good
resources keep serving. When the stream ends or fails the client reconnects with jittered
exponential backoff (`backoff_base_s` doubling to `backoff_max_s`, each wait drawn in
[0.5, 1] of it) and subscribes again to everything it held, serving the last good policy
meanwhile. With `cache` (`MESHCLIENT_POLICY_CACHE`) the composed policy is written after
each update and restored at a cold start, so a restart serves before the server answers.
In a forked child the thread starts again on first use (`meshclient/_fork.py`).
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc

from .. import _events, _fork
from .._clock import RNG
from .._types import Rng
from ..errors import PolicyError
from ..policy import Policy, PolicyStore
from . import resources
from .bootstrap import Bootstrap
from .cache import read, write
from .channel import END, channel, node_proto, requests
from .hosts import HostPatterns, ListenerWaiter, listener_name
from .merge import compose
from .protocol import ORDER, SHORT, AdsProtocol, Candidate

logger = logging.getLogger("meshclient.xds")
MAX_ERROR_CHARS = 4096


class XdsClient:
    """Keeps `store` in step with an ADS server. **Parameters:** `hosts` (patterns of
    `MESHCLIENT_XDS_HOSTS`), `wait_s` (bound on a new host's first requests), `cache`,
    `backoff_base_s` / `backoff_max_s` (reconnect backoff), `rng`."""

    def __init__(self, store: PolicyStore, bootstrap: Bootstrap, *,
                 hosts: tuple[str, ...] = ("*.svc.cluster.local", "*.svc"),
                 wait_s: float = 5.0, cache: str | None = None, backoff_base_s: float = 1.0,
                 backoff_max_s: float = 30.0, rng: Rng = RNG) -> None:
        if not backoff_base_s > 0 or backoff_max_s < backoff_base_s:
            raise ValueError(f"xDS backoff must be 0 < base <= max: {backoff_base_s!r}, "
                             f"{backoff_max_s!r}")
        self.store = store
        self.bootstrap = bootstrap
        self.patterns = HostPatterns(hosts)
        self.wait_s = wait_s
        self.cache = cache
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.protocol = AdsProtocol(node_proto(bootstrap), bootstrap.ignore_resource_deletion,
                                    bootstrap.certificate_providers)
        self.connection = "idle"  # connecting, connected, disconnected, closed
        self.connects = 0
        self.last_connection_error = ""
        self._rng = rng
        self._lock = threading.Lock()  # protocol, waiters, outbox; held for no I/O
        # composing and swapping the policy (xDS update or local replace); no network I/O
        # under it (the cache write is local disk)
        self._apply_lock = threading.RLock()
        self._waiters: dict[str, ListenerWaiter] = {}
        self._logged_absent: set[str] = set()
        self._outbox: queue.Queue[Any] | None = None
        self._call: Any = None
        self._local = store.current  # the policy without xDS
        self._applied: Policy | None = None  # the last policy this client swapped in
        self._version = "xds"  # the xDS part of the version of the policy in force
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._forked = False
        self._unsubscribe = store.subscribe(self._on_replace)
        _fork.track(self)

    # -- the request path's side -------------------------------------------------------
    def waiter(self, host: str, port: int | None, scheme: str) -> ListenerWaiter | None:
        """For a request to `host` with no service in the policy: the waiter its call
        must wait on first, or None (not an xDS host, or known, or waited long enough:
        pass through)."""
        if not self.patterns.matches(host):
            return None
        name = listener_name(host, port, scheme)
        found = self._waiters.get(name)
        if found is None:
            with self._lock:
                found = self._waiters.get(name)
                if found is None:
                    found = self._waiters[name] = ListenerWaiter(name, host.lower(), self.wait_s)
                    self._send(self.protocol.want(name, host.lower()))
        return None if found.ready or found.expired() else found

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> XdsClient:
        """Restore the cache (if any), then connect in the background."""
        if self.cache is not None:
            self._restore(self.cache)
        self._spawn()
        return self

    def _spawn(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"meshclient-xds {self.bootstrap.server_uri}")
        self._thread.start()

    def close(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._unsubscribe()
        call = self._call
        if call is not None:
            call.cancel()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout)
        self.connection = "closed"

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._apply_lock = threading.RLock()
        self._thread, self._call, self._outbox = None, None, None  # the parent's
        self._forked = True

    def _resume_after_fork(self) -> None:
        if self._forked and not self._stop.is_set():
            self._forked = False
            self._spawn()

    # -- the stream --------------------------------------------------------------------
    def _send(self, requests: list[Any]) -> None:
        outbox = self._outbox  # under self._lock; none while disconnected (resent at start)
        if outbox is not None:
            for request in requests:
                outbox.put(request)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                answered = self._stream_once()
            except Exception as exc:  # a bug must not end the client
                logger.exception("xDS client hit an unexpected error; reconnecting")
                self.last_connection_error = repr(exc)
                answered = False
            if self._stop.is_set():
                break
            failures = 1 if answered else failures + 1
            ceiling = min(self.backoff_max_s,
                          self.backoff_base_s * 2.0 ** min(failures - 1, 30))
            self._stop.wait(ceiling * (0.5 + 0.5 * self._rng.random()))

    def _stream_once(self) -> bool:
        grpc_channel = channel(self.bootstrap)
        outbox: queue.Queue[Any] = queue.Queue()
        with self._lock:
            self._outbox = outbox
            for request in self.protocol.start_stream():
                outbox.put(request)
        self.connection = "connecting"
        answered = False
        call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(grpc_channel).StreamAggregatedResources(
            requests(outbox))
        self._call = call
        try:
            if self._stop.is_set():
                return False
            for response in call:
                if not answered:
                    answered = True
                    self.connects += 1
                    self.connection = "connected"
                    logger.info("xDS stream to %s established", self.bootstrap.server_uri)
                    _events.emit(_events.XDS_CONNECTION, "", server=self.bootstrap.server_uri,
                                 state="connected")
                self._handle(response)
        except grpc.RpcError as exc:
            if not self._stop.is_set():
                detail = f"{exc.code()}: {exc.details()}" if isinstance(exc, grpc.Call) else repr(exc)
                self.last_connection_error = detail
                log = logger.warning if answered or self.connects == 0 else logger.debug
                log("xDS stream to %s ended (%s); serving the last good policy %r",
                    self.bootstrap.server_uri, detail, self.store.current.version)
        finally:
            with self._lock:
                self._outbox = None
            outbox.put(END)
            call.cancel()
            grpc_channel.close()
            if self.connection != "closed":
                self.connection = "disconnected"
            if answered:
                _events.emit(_events.XDS_CONNECTION, "", server=self.bootstrap.server_uri,
                             state="disconnected")
        return answered

    def _handle(self, response: Any) -> None:
        type_url = response.type_url
        with self._lock:
            try:
                candidate = self.protocol.receive(response)
            except PolicyError as exc:
                self._refuse(type_url, response.nonce, exc)
                return
            listeners = dict(self.protocol.listeners)
        with self._apply_lock:  # compose and swap as one step against a local replace
            try:
                policy, document = self._compose(candidate, listeners)
            except PolicyError as exc:
                with self._lock:
                    self._refuse(type_url, response.nonce, exc)
                return
            except Exception as exc:  # translation must not kill the stream: refuse it
                with self._lock:
                    self._refuse(type_url, response.nonce, PolicyError(
                        f"{SHORT.get(type_url, type_url)} version {response.version_info!r} "
                        f"could not be translated ({type(exc).__name__}): {exc}"))
                return
            self._swap(policy, document)
        with self._lock:
            self._send(self.protocol.accept(candidate))
            absent = set(self.protocol.absent)
            complete = {name for name, waiter in self._waiters.items()
                        if not waiter.ready and self.protocol.complete(name)}
        _events.emit(_events.XDS_UPDATE, "", type=SHORT[type_url], version=candidate.version,
                     resources=len(response.resources))
        self._wake(policy, absent, complete)

    def _refuse(self, type_url: str, nonce: str, exc: PolicyError) -> None:
        """Under the lock: NACK, log, event; the last good resources stay."""
        text = "; ".join(exc.errors)[:MAX_ERROR_CHARS]
        self._send([self.protocol.nack(type_url, nonce, text)])
        status = self.protocol.types.get(type_url)
        kept = status.version if status is not None else ""
        logger.error("xDS %s refused (NACK), keeping version %r: %s",
                     SHORT.get(type_url, type_url), kept, text)
        _events.emit(_events.XDS_NACK, "", type=SHORT.get(type_url, type_url), version=kept,
                     error=text)

    def _compose(self, candidate: Candidate, listeners: dict[str, str]) -> tuple[Policy, dict[str, Any]]:
        fragment = resources.translate(candidate.state, listeners,
                                           self.bootstrap.certificate_providers)
        versions = {t: self.protocol.types[t].version for t in ORDER}
        versions[candidate.type_url] = candidate.version
        version = "xds:" + "/".join(f"{SHORT[t]}={versions[t] or '-'}" for t in ORDER)
        composed = compose(self._local, fragment, version)
        self._version = version
        return composed

    def _swap(self, policy: Policy, document: dict[str, Any]) -> None:
        if policy == self.store.current:
            return
        self._applied = policy
        self.store.replace(policy)
        if self.cache is not None:
            write(self.cache, document, dict(self.protocol.listeners))

    def _wake(self, policy: Policy, absent: set[str], complete: set[str]) -> None:
        for waiter in list(self._waiters.values()):
            if waiter.listener in absent and waiter.listener not in self._logged_absent:
                self._logged_absent.add(waiter.listener)
                logger.warning("xDS server has no listener %s: requests to %s pass through",
                               waiter.listener, waiter.host)
            if not waiter.ready and (waiter.listener in absent or (
                    waiter.listener in complete and waiter.host in policy.resolved)):
                waiter.set()

    def _on_replace(self, old: Policy, new: Policy) -> None:
        """Someone else replaced the policy (a control refresher, a test): it is the new
        local policy; compose the xDS services over it again."""
        if new is self._applied:
            return
        with self._apply_lock:
            self._local = new
            with self._lock:
                state = self.protocol.state
                listeners = dict(self.protocol.listeners)
                if not any(self.protocol.types[t].version for t in ORDER):
                    return  # nothing from xDS yet
            try:
                fragment = resources.translate(state, listeners, self.bootstrap.certificate_providers)
                policy, _document = compose(new, fragment, self._version)
            except PolicyError as exc:
                logger.error("local policy %r conflicts with the xDS services, which are "
                             "dropped until the next update: %s", new.version, exc)
                return
            self._applied = policy
            self.store.replace(policy)

    def _restore(self, path: str) -> None:
        restored = read(path)
        if restored is None:
            return
        policy, listeners = restored
        with self._lock:
            for name, host in listeners.items():
                self.protocol.want(name, host)
                waiter = self._waiters[name] = ListenerWaiter(name, host, self.wait_s)
                waiter.set()
        self._applied = policy
        self.store.replace(policy)
        logger.info("policy %r restored from the cache %s until the xDS server answers",
                    policy.version, path)

    # -- status ------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            types = self.protocol.snapshot()
            listeners = sorted(self.protocol.listeners)
            absent = sorted(self.protocol.absent)
        return {"server": self.bootstrap.server_uri, "connection": self.connection,
                "connects": self.connects, "last_connection_error": self.last_connection_error,
                "node": self.bootstrap.node.id, "hosts": list(self.patterns.patterns),
                "listeners": listeners, "absent": absent, "resources": types}

    def __repr__(self) -> str:
        return f"<XdsClient {self.bootstrap.server_uri} {self.connection}>"
