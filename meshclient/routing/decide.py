"""`route()`: the routing step of a request, as one pure decision.

`route(request, service, policy, rng) -> Decision(destination, fault, mirror, ...)`:
the first matching route picks a destination by weight (sticky on `hash_on`), the route's
`fault` (else the service's) applies to each attempt, `mirror` names the service that
gets a copy when the percentage roll says so, and the route's `limits` (with its name and
index, which key its limiter) go to admission (`security.registry`).
A destination equal to the routed service is that service's own endpoints; a
destination's own routes are not applied again.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from .._types import Rng
from ..context import MIRROR_HEADER
from ..policy import FaultPolicy, LimitsPolicy, Policy, Service
from .rules import matches
from .split import choose


@dataclass(slots=True)  # not frozen: made per request (see _core/actions.py)
class Decision:
    """Where a request goes: `destination` (its endpoints, retry, breakers…), the `fault`
    rolled per attempt, the `mirror` target (or None), the matched route's name, its index
    in the service's routes (-1: none matched) and its `limits` (or None)."""

    destination: Service
    fault: FaultPolicy | None = None
    mirror: Service | None = None
    route: str | None = None
    index: int = -1
    limits: LimitsPolicy | None = None


def route(request: httpx.Request, service: Service, policy: Policy, rng: Rng) -> Decision:
    """Decide destination, fault and mirror for `request` to `service` under `policy`
    (the snapshot the request read once)."""
    if not service.routes:
        return Decision(service, service.fault)
    index = 0
    for rule in service.routes:  # the first route that matches
        if matches(rule.match, request, rng):
            break
        index += 1
    else:
        return Decision(service, service.fault)
    name = choose(rule, request, rng)
    destination = service if name is None or name == service.name else policy.resolved[name]
    mirror = None
    if rule.mirror is not None and MIRROR_HEADER not in request.headers and (
            rng.random() * 100 < rule.mirror.percent):
        mirror = policy.resolved[rule.mirror.to]
    fault = rule.fault if rule.fault is not None else service.fault
    return Decision(destination, fault, mirror, rule.name, index, rule.limits)
