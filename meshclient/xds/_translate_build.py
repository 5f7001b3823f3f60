"""Assemble the policy fragment from the parsed resources (see `resources.translate`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ._translate_cluster import parse_cluster
from ._translate_endpoint import endpoint_documents
from ._translate_listener import parse_listener
from ._translate_names import cluster_names, route_service
from ._translate_route import RouteInfo, VirtualHostInfo, parse_route_config
from ._translate_vhost import pick

#: Envoy's route timeout when the route sets none: the total a per-try timeout needs.
ENVOY_ROUTE_TIMEOUT = 15.0


def _vhost(hosts: tuple[VirtualHostInfo, ...], listener: str) -> VirtualHostInfo | None:
    table = [(vh.domains, vh) for vh in hosts]
    found = pick(table, listener)
    if found is None and ":" in listener:
        found = pick(table, listener.rpartition(":")[0])
    return found


def _cluster_service(state: Any, cluster: str, providers: Any) -> dict[str, Any]:
    msg = state.clusters.get(cluster)
    if msg is None:
        return {"endpoints": []}  # not arrived yet: no endpoints (calls fail, as in gRPC)
    info = parse_cluster(cluster, msg, providers)
    section = dict(info.section)
    if "discovery" in section:
        return section
    if info.eds_name is not None:
        cla = state.endpoints.get(info.eds_name)
        section["endpoints"] = endpoint_documents(info.eds_name, cla) if cla else []
    return section


def _route_sections(r: RouteInfo) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if r.retry is not None:
        out["retry"] = dict(r.retry)
    if r.timeout is not None or r.per_try is not None:
        total = r.timeout if r.timeout is not None else ENVOY_ROUTE_TIMEOUT
        timeout: dict[str, Any] = {"total": total}
        if r.per_try is not None:
            timeout["per_try"] = min(r.per_try, total)
        out["timeout"] = timeout
    return out


def build(state: Any, wanted: Mapping[str, str], providers: Any) -> dict[str, Any]:
    hosts: dict[str, tuple[VirtualHostInfo | None, dict[str, Any] | None]] = {}
    for listener, service in wanted.items():
        msg = state.listeners.get(listener)
        if msg is None:
            continue
        info = parse_listener(listener, msg)
        if info is None:
            continue
        if info.inline is not None:
            vhosts = parse_route_config(listener, info.inline, info.max_stream_duration,
                                        kind="listener")
        elif info.rds_name is not None and info.rds_name in state.routes:
            vhosts = parse_route_config(info.rds_name, state.routes[info.rds_name],
                                        info.max_stream_duration)
        else:
            continue
        hosts[service] = (_vhost(vhosts, listener), info.fault)
    used = {c for vh, _ in hosts.values() if vh is not None for r in vh.routes
            for c in [n for n, _ in r.clusters] + ([r.mirror[0]] if r.mirror else [])}
    names = cluster_names(used, hosts)
    services: dict[str, Any] = {}
    clusters = {c: _cluster_service(state, c, providers) for c in sorted(used)}
    for c, section in clusters.items():
        services[names[c]] = section
    for service, (vh, fault) in hosts.items():
        doc: dict[str, Any] = {"endpoints": []}
        if fault is not None:
            doc["fault"] = fault
        routes = []
        for r in vh.routes if vh is not None else ():
            rule: dict[str, Any] = {"match": r.match}
            if r.name:
                rule["name"] = r.name
            extra = _route_sections(r)
            to = []
            for c, weight in r.clusters:
                target = names[c]
                if extra:
                    key = json.dumps([c, extra], sort_keys=True)
                    target = route_service(names[c], key)
                    services[target] = {**clusters[c], **extra}
                to.append({"service": target, "weight": weight})
            if to:
                rule["to"] = to
            if r.hash_on is not None:
                rule["hash_on"] = r.hash_on
            if r.mirror is not None:
                rule["mirror"] = {"to": names[r.mirror[0]], "percent": r.mirror[1]}
            if r.abort_status is None and r.fault is not None:
                rule["fault"] = r.fault
            routes.append(rule)
        doc["routes"] = routes
        services[service] = doc
    return {"services": services}
