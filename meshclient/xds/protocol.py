"""The ADS state-of-the-world protocol, sans I/O: what to ask, what an answer changes, and
the ACK or NACK that answers it (Envoy's xDS protocol, as gRPC's client speaks it).

Per type (LDS, RDS, CDS, EDS) it keeps the subscribed names, the last accepted
`version_info`, the nonce of the last response on this stream and the last good resources.

* `start_stream()` — the requests of a new stream: every type with names, carrying the last
  accepted version (nonces belong to a stream and are cleared), `node` on the first.
* `want(listener, host)` — subscribe a listener (`host:port`); the LDS request to send.
* `receive(response)` — decode and validate every resource; the new candidate state, or
  `PolicyError` (the caller NACKs with `nack()`, keeping the last good resources). A
  response with one invalid resource is refused whole.
* `accept(candidate)` — after the caller applied it: the ACK, then requests for every type
  whose names changed (a listener naming a new route configuration, …).

Removal follows the protocol: an LDS or CDS answer is the whole set, so a subscribed
listener or cluster it leaves out is gone (a listener then "does not exist": its host passes
through), unless the bootstrap sets `ignore_resource_deletion`; RDS and EDS answers update
what they name, and a resource nothing references any more is dropped with its
subscription.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2

from ..errors import PolicyError
from . import resources
from .resources import CLUSTER, ENDPOINT, LISTENER, ROUTE, XdsState

ORDER = (LISTENER, ROUTE, CLUSTER, ENDPOINT)
_FIELD = {LISTENER: "listeners", ROUTE: "routes", CLUSTER: "clusters", ENDPOINT: "endpoints"}
SHORT = {LISTENER: "lds", ROUTE: "rds", CLUSTER: "cds", ENDPOINT: "eds"}
_INVALID_ARGUMENT = 3  # google.rpc.Code


@dataclass(slots=True)
class TypeStatus:
    """One resource type's protocol state (and what `meshclient status` shows of it)."""

    names: frozenset[str] = frozenset()
    version: str = ""  # last accepted
    nonce: str = ""  # last received on this stream
    acks: int = 0
    nacks: int = 0
    last_ack_at: float | None = None  # wall-clock
    last_nack_at: float | None = None
    last_error: str = ""

    def snapshot(self) -> dict[str, Any]:
        return {"version": self.version, "resources": len(self.names), "acks": self.acks,
                "nacks": self.nacks, "last_ack_at": self.last_ack_at,
                "last_nack_at": self.last_nack_at, "last_error": self.last_error}


@dataclass(slots=True)
class Candidate:
    """A decoded, validated answer not yet applied."""

    type_url: str
    version: str
    nonce: str
    state: XdsState
    #: subscribed listeners the answer says do not exist (LDS only)
    absent: frozenset[str] = frozenset()


def _copy(state: XdsState) -> XdsState:
    return XdsState(dict(state.listeners), dict(state.routes), dict(state.clusters),
                    dict(state.endpoints))


@dataclass
class AdsProtocol:
    """The client side of one ADS conversation (survives reconnects). Not thread-safe:
    the caller holds its lock around each call (none does I/O)."""

    node: Any  # config.core.v3.Node
    ignore_resource_deletion: bool = False
    #: the bootstrap's `certificate_providers` (a cluster's TLS may name one)
    providers: Mapping[str, Any] = field(default_factory=dict)
    state: XdsState = field(default_factory=lambda: XdsState({}, {}, {}, {}))
    types: dict[str, TypeStatus] = field(default_factory=lambda: {t: TypeStatus() for t in ORDER})
    #: listener name (`host:port`) -> service host
    listeners: dict[str, str] = field(default_factory=dict)
    absent: set[str] = field(default_factory=set)
    _node_sent: bool = False

    def _request(self, type_url: str, *, version: str | None = None, nonce: str | None = None,
                 error: str | None = None) -> Any:
        status = self.types[type_url]
        request = discovery_pb2.DiscoveryRequest(
            type_url=type_url, resource_names=sorted(status.names),
            version_info=status.version if version is None else version,
            response_nonce=status.nonce if nonce is None else nonce)
        if error is not None:
            request.error_detail.CopyFrom(status_pb2.Status(code=_INVALID_ARGUMENT,
                                                            message=error))
        if not self._node_sent:
            request.node.CopyFrom(self.node)
            self._node_sent = True
        return request

    def start_stream(self) -> list[Any]:
        self._node_sent = False
        self.types[LISTENER].names = frozenset(self.listeners)
        out = []
        for type_url in ORDER:
            status = self.types[type_url]
            status.nonce = ""
            if status.names:
                out.append(self._request(type_url))
        return out

    def want(self, listener: str, host: str) -> list[Any]:
        if listener in self.listeners:
            return []
        self.listeners[listener] = host
        self.types[LISTENER].names = frozenset(self.listeners)
        return [self._request(LISTENER)]

    def receive(self, response: Any) -> Candidate:
        """Decode and validate `response`; raises `PolicyError` (NACK it)."""
        type_url = response.type_url
        if type_url not in self.types:
            raise PolicyError(f"type_url {type_url!r} was not subscribed (one of "
                              f"{', '.join(ORDER)})")
        self.types[type_url].nonce = response.nonce
        decoded: dict[str, Any] = {}
        errors: list[str] = []
        for i, any_msg in enumerate(response.resources):
            try:
                name, msg = resources.decode(type_url, any_msg)
                resources.validate(type_url, msg, self.providers)
            except PolicyError as exc:
                errors.extend(exc.errors)
                continue
            if name in decoded:
                errors.append(f"resources[{i}]: {name!r} appears twice in one response")
            decoded[name] = msg
        if errors:
            raise PolicyError(errors)
        state = _copy(self.state)
        held: dict[str, Any] = getattr(state, _FIELD[type_url])
        absent: frozenset[str] = frozenset()
        if type_url in (LISTENER, CLUSTER) and not self.ignore_resource_deletion:
            held.clear()  # the whole set: what it leaves out is gone
        held.update(decoded)
        if type_url == LISTENER:
            absent = frozenset(n for n in self.listeners if n not in held)
        self._prune(state)
        return Candidate(type_url, response.version_info, response.nonce, state, absent)

    def _wanted(self, state: XdsState) -> dict[str, set[str]]:
        wanted: dict[str, set[str]] = {t: set() for t in ORDER}
        wanted[LISTENER] = set(self.listeners)
        for type_url in ORDER:
            held: dict[str, Any] = getattr(state, _FIELD[type_url])
            for name in wanted[type_url]:
                msg = held.get(name)
                if msg is not None:
                    for ref_type, ref_name in resources.references(type_url, msg):
                        if ref_type in wanted:
                            wanted[ref_type].add(ref_name)
        return wanted

    def complete(self, listener: str) -> bool:
        """Whether `listener` and everything it references (routes, clusters, endpoints)
        are held: what a host's first requests wait for."""
        todo, seen = [(LISTENER, listener)], set()
        while todo:
            type_url, name = todo.pop()
            if (type_url, name) in seen:
                continue
            seen.add((type_url, name))
            msg = getattr(self.state, _FIELD[type_url]).get(name)
            if msg is None:
                return False
            todo.extend(ref for ref in resources.references(type_url, msg) if ref[0] in _FIELD)
        return True

    def _prune(self, state: XdsState) -> None:
        wanted = self._wanted(state)
        for type_url in ORDER:
            held: dict[str, Any] = getattr(state, _FIELD[type_url])
            for name in [n for n in held if n not in wanted[type_url]]:
                del held[name]

    def accept(self, candidate: Candidate) -> list[Any]:
        """The candidate is applied: the ACK, then requests for changed subscriptions."""
        self.state = candidate.state
        if candidate.type_url == LISTENER:
            self.absent = set(candidate.absent)
        status = self.types[candidate.type_url]
        status.version, status.acks, status.last_ack_at = (candidate.version, status.acks + 1,
                                                          time.time())
        status.last_error = ""
        out = [self._request(candidate.type_url)]
        wanted = self._wanted(self.state)
        for type_url in ORDER:
            names = frozenset(wanted[type_url])
            current = self.types[type_url]
            if names != current.names:
                current.names = names
                if type_url != candidate.type_url:
                    out.append(self._request(type_url))
                else:
                    out[0] = self._request(type_url)
        return out

    def nack(self, type_url: str, nonce: str, error: str) -> Any:
        """The NACK of a refused answer: the last accepted version, its nonce, the error."""
        status = self.types.get(type_url)
        if status is None:  # a type never subscribed: answer it with its own type_url
            return discovery_pb2.DiscoveryRequest(
                type_url=type_url, response_nonce=nonce,
                error_detail=status_pb2.Status(code=_INVALID_ARGUMENT, message=error))
        status.nacks += 1
        status.last_nack_at = time.time()
        status.last_error = error
        return self._request(type_url, nonce=nonce, error=error)

    def snapshot(self) -> dict[str, Any]:
        return {SHORT[t]: {**self.types[t].snapshot(), "names": sorted(self.types[t].names)}
                for t in ORDER}


def names_of(items: Iterable[str]) -> str:
    return ", ".join(sorted(items)) or "(none)"
