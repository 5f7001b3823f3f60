"""How one endpoint's `limits` are divided among its pool's shards (`_pools.shard_limits`)."""

from __future__ import annotations

import httpx
from hypothesis import given
from hypothesis import strategies as st

from meshclient.transport._pools import DEFAULT_LIMITS, SHARD, EndpointPools, shard_limits


@given(st.integers(1, 5000), st.one_of(st.none(), st.integers(0, 6000)),
       st.sampled_from([None, 5.0]))
def test_shards_add_up_to_the_endpoints_limits(total: int, keep: int | None,
                                               expiry: float | None) -> None:
    limits = httpx.Limits(max_connections=total, max_keepalive_connections=keep,
                          keepalive_expiry=expiry)
    shards = shard_limits(limits)
    caps = [s.max_connections for s in shards]
    assert all(c is not None and 1 <= c <= SHARD for c in caps) or shards == [limits]
    assert sum(c or 0 for c in caps) == total
    assert max(caps) - min(c or 0 for c in caps) <= 1  # even shares
    idle = [s.max_keepalive_connections for s in shards]
    if keep is None:
        assert idle == [None] * len(shards)
    elif len(shards) > 1:
        assert sum(i or 0 for i in idle) == min(keep, total)
        assert all((i or 0) <= (c or 0) for i, c in zip(idle, caps, strict=True))
        # the allowance goes to the first shards (made first, used most)
        assert idle == sorted(idle, reverse=True)
    assert all(s.keepalive_expiry == expiry for s in shards)


def test_no_shards_without_a_limit_or_with_http2() -> None:
    unlimited = httpx.Limits(max_connections=None)
    assert shard_limits(unlimited) == [unlimited]
    assert shard_limits(DEFAULT_LIMITS, http2=True) == [DEFAULT_LIMITS]
    assert len(shard_limits(DEFAULT_LIMITS)) == 13  # httpx's 100 connections, 8 a shard


def test_httpx_defaults_when_no_limits_given() -> None:
    made: list[httpx.Limits] = []
    pools: EndpointPools[httpx.HTTPTransport] = EndpointPools(
        lambda limits: made.append(limits) or httpx.HTTPTransport(limits=limits))
    try:
        assert pools.get("127.0.0.2:80") is pools.get("127.0.0.2:80")  # idle: shard 0
        assert made == [shard_limits(DEFAULT_LIMITS)[0]]
        assert made[0].max_keepalive_connections == 8  # of httpx's 20: the first shards'
    finally:
        for transport in pools.take_all():
            transport.close()
