"""Service names for xDS clusters (meshclient service names are lower-case host names).

A cluster name that already is a valid service name, and is no host's service, is used as
it is. Otherwise it is lower-cased, each character outside `a-z 0-9 . - _` becomes `_`
(Istio's `outbound|8080||users.default.svc.cluster.local` becomes
`outbound_8080__users.default.svc.cluster.local`), and when that is still invalid, was
changed by more than `|` -> `_`, or names another cluster or host too, `-x` and eight hex
digits of a hash of the original name are appended. The mapping is stable across
processes and updates.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable

_VALID = re.compile(r"^[a-z0-9]([a-z0-9\-_.]*[a-z0-9])?$")
_OTHER = re.compile(r"[^a-z0-9\-_.]")


def valid_service_name(name: str) -> bool:
    return bool(_VALID.match(name))


def _digest(name: str) -> str:
    return hashlib.blake2b(name.encode("utf-8", "surrogateescape"), digest_size=4).hexdigest()


def _candidate(name: str) -> str:
    return _OTHER.sub("_", name.replace("|", "_").lower())


def cluster_names(clusters: Iterable[str], hosts: Iterable[str]) -> dict[str, str]:
    """Cluster name -> service name, for every cluster of `clusters`."""
    taken = set(hosts)
    clusters = sorted(set(clusters))
    exact = {c for c in clusters if valid_service_name(c) and c not in taken}
    counts = Counter(_candidate(c) for c in clusters if c not in exact)
    out: dict[str, str] = {}
    for c in clusters:
        cand = _candidate(c)
        if c in exact:
            out[c] = c
        elif (cand == c.replace("|", "_") and valid_service_name(cand) and counts[cand] == 1
              and cand not in exact and cand not in taken):
            out[c] = cand
        else:
            base = cand.strip("_.-")[:200] or "cluster"
            out[c] = f"{base}-x{_digest(c)}"
    return out


def route_service(cluster_service: str, key: str) -> str:
    """The service of a route with its own deadline or retry policy towards a cluster."""
    return f"{cluster_service}-r{_digest(key)}"
