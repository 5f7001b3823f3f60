"""Route matching: the first route of a service whose `match` holds decides (pure, no I/O).

Conditions of one match are ANDed: method, path (exact / prefix / whole-path regex, query
string excluded, as Envoy does), headers (case-insensitive names) and query parameters
(case-sensitive names, first value), each `exact`, `prefix`, `suffix`, whole-value
`regex` or `present`, optionally inverted; then a `percent` of the rest, drawn per request.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from .._types import Rng
from ..policy import RouteMatch, RouteRule


def matches(match: RouteMatch, request: httpx.Request, rng: Rng | None = None) -> bool:
    """True when every condition of `match` holds for `request`; a `percent` match draws
    from `rng` last (without one it counts as not drawn: no match)."""
    if match.method and request.method not in match.method:
        return False
    if match.path is not None and not match.path.matches(request.url.path):
        return False
    if match.headers:
        headers = request.headers
        for name, cond in match.headers.items():
            if not cond.matches(headers.get(name)):
                return False
    if match.query:
        params = request.url.params
        for name, cond in match.query.items():
            if not cond.matches(params.get(name)):
                return False
    if match.percent is not None:
        return rng is not None and rng.random() * 100 < match.percent
    return True


def first_match(routes: Sequence[RouteRule], request: httpx.Request,
                rng: Rng | None = None) -> RouteRule | None:
    """The first route that matches, or None (the request goes to the service itself)."""
    for rule in routes:
        if matches(rule.match, request, rng):
            return rule
    return None
