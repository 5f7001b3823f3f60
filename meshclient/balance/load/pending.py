"""Pending requests as the load (tower's `PendingRequests`, Envoy's least-request): the
cost of an endpoint is the number of requests it would have in flight if picked.

The count itself lives in `EndpointState.in_flight` (changed under the state's lock, begun
when an attempt is sent and ended when its response body closes or the attempt fails).
"""

from __future__ import annotations


def least_request_cost(pending: int) -> float:
    """`pending + 1`: the requests in flight once this one is added."""
    return float(pending + 1)
