"""The SRV priority-group rule, pure (the balancer applies it per pick, counting ejected and
breaker-open endpoints as unhealthy too; see `balance/_levels.py`).

SRV priority groups (RFC 2782): use the lowest-numbered group that has at least one healthy
endpoint (one that is not failing its active health checks); fall to the next group when a
whole group is unhealthy. When no group has a healthy endpoint, the lowest group is used
anyway (the balancer's panic rule then decides), rather than failing every request.
"""

from __future__ import annotations

from collections.abc import Collection

from .endpoint import Endpoint


def select(endpoints: tuple[Endpoint, ...], unhealthy: Collection[str] = ()
           ) -> tuple[Endpoint, ...]:
    if not endpoints:
        return endpoints
    priorities = sorted({e.priority for e in endpoints})
    if len(priorities) == 1:
        return endpoints
    for priority in priorities:
        group = tuple(e for e in endpoints if e.priority == priority)
        if any(e.key not in unhealthy for e in group):
            return group
    return tuple(e for e in endpoints if e.priority == priorities[0])
