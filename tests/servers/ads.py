"""A real state-of-the-world ADS server on grpcio + xds-protos, for tests.

It holds a snapshot of resources per type (`set(type_url, [messages])`, each change a new
version of that type), answers each stream's subscriptions (LDS/CDS: every resource when
the names are empty, else those named; RDS/EDS: those named), stamps every response with a
fresh nonce, pushes to every open stream when a type changes, and records what clients
send back: ACKs (`acks`) and NACKs (`nacks`, with the `error_detail` message). A request
whose nonce is not the last one sent on its stream for its type is stale and only
recorded. `stop()` ends every stream (clients see the server go away); `start()` serves
again on the same port.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import any_pb2

from tests.servers.helpers import until

LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
_WILDCARD_TYPES = (LISTENER, CLUSTER)


@dataclass(frozen=True)
class Reply:
    """What a client sent back about one response: an ACK or a NACK."""

    type_url: str
    version: str
    nonce: str
    error: str  # "" for an ACK
    node: str


def _name(msg: Any) -> str:
    return str(msg.cluster_name if hasattr(msg, "cluster_name") else msg.name)


class AdsServer:
    """ADS on `host:port` (port 0: a free one, kept across restarts)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 tls: tuple[bytes, bytes] | None = None) -> None:
        """`tls`: (certificate PEM, key PEM) to serve over TLS instead of plaintext."""
        self.host = host
        self.port = port
        self.tls = tls
        self._lock = threading.Lock()
        self._resources: dict[str, dict[str, Any]] = {t: {} for t in
                                                      (LISTENER, ROUTE, CLUSTER, ENDPOINT)}
        self._versions: dict[str, int] = {t: 0 for t in self._resources}
        self._streams: list[queue.Queue[Any]] = []
        self._nonces = itertools.count(1)
        self.acks: list[Reply] = []
        self.nacks: list[Reply] = []
        self.requests: list[Any] = []
        self.streams_opened = 0
        self._server: grpc.Server | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def bootstrap(self, node_id: str = "test-node", **node: Any) -> dict[str, Any]:
        """A bootstrap document pointing at this server."""
        creds: dict[str, Any] = {"type": "insecure"} if self.tls is None else {"type": "tls"}
        return {"xds_servers": [{"server_uri": self.address,
                                 "channel_creds": [creds],
                                 "server_features": ["xds_v3"]}],
                "node": {"id": node_id, **node}}

    # -- the snapshot ------------------------------------------------------------------
    def set(self, type_url: str, messages: list[Any]) -> str:
        """Replace every resource of `type_url`; pushes to every stream. Returns the version."""
        with self._lock:
            self._resources[type_url] = {_name(m): m for m in messages}
            self._versions[type_url] += 1
            version = str(self._versions[type_url])
            streams = list(self._streams)
        for stream in streams:
            stream.put(("push", type_url))
        return version

    def version(self, type_url: str) -> str:
        with self._lock:
            return str(self._versions[type_url])

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> bool:
        return until(predicate, timeout_s, every_s=0.01)

    def acked(self, type_url: str, version: str | None = None) -> bool:
        version = self.version(type_url) if version is None else version
        return any(r.type_url == type_url and r.version == version for r in list(self.acks))

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> AdsServer:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(_Servicer(self), server)
        if self.tls is None:
            self.port = server.add_insecure_port(self.address)
        else:
            creds = grpc.ssl_server_credentials([(self.tls[1], self.tls[0])])
            self.port = server.add_secure_port(self.address, creds)
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        """End every stream and stop listening (clients see the server go away)."""
        with self._lock:
            streams, self._streams = list(self._streams), []
        for stream in streams:
            stream.put(("end", None))
        server, self._server = self._server, None
        if server is not None:
            server.stop(grace=None).wait(5)

    def __enter__(self) -> AdsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- one stream --------------------------------------------------------------------
    def _response(self, type_url: str, names: frozenset[str], nonce: str) -> Any:
        with self._lock:
            held = self._resources[type_url]
            version = str(self._versions[type_url])
            if not names and type_url in _WILDCARD_TYPES:
                chosen = list(held.values())
            else:
                chosen = [held[n] for n in sorted(names) if n in held]
        packed = []
        for msg in chosen:
            item = any_pb2.Any()
            item.Pack(msg)
            packed.append(item)
        return discovery_pb2.DiscoveryResponse(version_info=version, resources=packed,
                                               type_url=type_url, nonce=nonce)

    def stream(self, requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        events: queue.Queue[Any] = queue.Queue()
        with self._lock:
            self._streams.append(events)
            self.streams_opened += 1

        def read() -> None:
            try:
                for request in requests:
                    events.put(("request", request))
            except Exception:  # the stream was cancelled
                pass
            events.put(("end", None))

        threading.Thread(target=read, daemon=True, name="ads-reader").start()
        names: dict[str, frozenset[str]] = {}
        sent: dict[str, tuple[str, str]] = {}  # type -> (version, nonce) last sent
        node = ""
        try:
            while context.is_active():
                try:
                    kind, item = events.get(timeout=0.5)
                except queue.Empty:
                    continue
                if kind == "end":
                    return
                due: list[str] = []
                if kind == "push":
                    if item in names and sent.get(item, ("", ""))[0] != self.version(item):
                        due.append(item)
                else:
                    request = item
                    self.requests.append(request)
                    node = request.node.id or node
                    type_url = request.type_url
                    last = sent.get(type_url)
                    if request.response_nonce:
                        if last is None or request.response_nonce != last[1]:
                            continue  # stale: answered by a later response already
                        reply = Reply(type_url, request.version_info, request.response_nonce,
                                      request.error_detail.message, node)
                        (self.nacks if request.HasField("error_detail") else self.acks).append(
                            reply)
                    new_names = frozenset(request.resource_names)
                    changed = names.get(type_url) != new_names
                    names[type_url] = new_names
                    if changed or last is None or last[0] != self.version(type_url):
                        due.append(type_url)
                for type_url in due:
                    nonce = str(next(self._nonces))
                    response = self._response(type_url, names[type_url], nonce)
                    sent[type_url] = (response.version_info, nonce)
                    yield response
        finally:
            with self._lock:
                if events in self._streams:
                    self._streams.remove(events)


class _Servicer(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):  # type: ignore[misc]
    def __init__(self, server: AdsServer) -> None:
        self.server = server

    def StreamAggregatedResources(self, request_iterator: Iterator[Any],
                                  context: grpc.ServicerContext) -> Iterator[Any]:
        return self.server.stream(request_iterator, context)
