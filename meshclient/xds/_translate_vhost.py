"""Virtual host selection by domain, as Envoy and gRPC do it (gRFC A28).

A domain is an exact name, `*.suffix`-style (`*` then a suffix), `prefix*`-style (a prefix
then `*`) or `*` alone; a `*` anywhere else is an error. For an authority, an exact match
wins over a suffix match, which wins over a prefix match, which wins over `*`; among
suffix (or prefix) matches the longest pattern wins; among equals, the first virtual host.
Matching ignores case.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from ._translate_common import Where

T = TypeVar("T")
EXACT, SUFFIX, PREFIX, UNIVERSE = 0, 1, 2, 3


def check_domain(where: Where, domain: str) -> None:
    """Refuse a domain pattern with a `*` other than leading, trailing or alone."""
    if not domain:
        raise where.error("must not be empty")
    if domain == "*":
        return
    stars = domain.count("*")
    if stars > 1 or (stars == 1 and not (domain.startswith("*") or domain.endswith("*"))):
        raise where.error(f"a '*' may only start or end a domain, or stand alone: {domain!r}")


def _kind(domain: str) -> int:
    if domain == "*":
        return UNIVERSE
    if domain.startswith("*"):
        return SUFFIX
    if domain.endswith("*"):
        return PREFIX
    return EXACT


def domain_matches(domain: str, authority: str) -> bool:
    kind = _kind(domain)
    if kind == EXACT:
        return domain == authority
    if kind == SUFFIX:
        return authority.endswith(domain[1:]) and len(authority) > len(domain) - 1
    if kind == PREFIX:
        return authority.startswith(domain[:-1]) and len(authority) > len(domain) - 1
    return True


def pick(hosts: Sequence[tuple[Sequence[str], T]], authority: str) -> T | None:
    """The value of the virtual host whose domains best match `authority`, or None."""
    authority = authority.lower()
    best: tuple[int, int] | None = None  # (kind, -length): smaller is better
    chosen: T | None = None
    for domains, value in hosts:
        for domain in domains:
            d = domain.lower()
            if not domain_matches(d, authority):
                continue
            rank = (_kind(d), -len(d))
            if best is None or rank < best:
                best, chosen = rank, value
    return chosen
