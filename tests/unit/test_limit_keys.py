"""`limits.key`: the parser (examples and a property test), the key values a request gets,
and the LRU cap of keyed buckets (fake clock)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshclient import Policy, PolicyError
from meshclient.policy._limitkey import LimitKey, parse_limit_key
from meshclient.security.limitkey import Identity, key_value
from meshclient.security.limits import KeyedBuckets
from meshclient.testing import FakeClock


@pytest.mark.parametrize(("text", "key"), [
    ("header:X-Tenant", LimitKey("header", ("x-tenant",))),
    ("claim:tenant", LimitKey("claim", ("tenant",))),
    ("claim:org.id", LimitKey("claim", ("org", "id"))),
    ("principal", LimitKey("principal")),
    ("route", LimitKey("route")),
    ("address", LimitKey("address")),
])
def test_keys_parse(text: str, key: LimitKey) -> None:
    assert parse_limit_key(text) == key


@pytest.mark.parametrize("text", ["", "header", "header:", "header:x y", "claim:", "claim:a..b",
                                  "principal:x", "tenant", "route:"])
def test_bad_keys_are_refused_with_the_value(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        parse_limit_key(text)
    with pytest.raises(PolicyError, match=r"defaults\.limits\.key"):
        Policy.from_dict({"defaults": {"limits": {"rate": 1, "key": text}}})


def test_a_key_needs_a_rate() -> None:
    with pytest.raises(PolicyError, match="key needs rate to be set: 'principal'"):
        Policy.from_dict({"defaults": {"limits": {"key": "principal"}}})


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=40) | st.sampled_from(["header:", "claim:", "principal", "route"])
       .flatmap(lambda p: st.text(max_size=20).map(lambda t: p + t)))
def test_any_key_parses_or_raises_value_error(text: str) -> None:
    try:
        key = parse_limit_key(text)
    except ValueError as exc:
        assert "key" in str(exc)
        return
    assert key.kind in ("header", "claim", "principal", "route", "address")


def test_key_values() -> None:
    who = Identity("spiffe://t/a", {"tenant": "acme", "org": {"id": 7}, "roles": ["x"]})
    headers = {"x-tenant": "globex"}
    assert key_value(LimitKey("header", ("x-tenant",)), headers=headers, route=None) == "globex"
    assert key_value(LimitKey("header", ("x-other",)), headers=headers, route=None) is None
    assert key_value(LimitKey("claim", ("org", "id")), headers={}, route=None, who=who) == "7"
    assert key_value(LimitKey("claim", ("roles",)), headers={}, route=None, who=who) is None
    assert key_value(LimitKey("principal"), headers={}, route=None, who=who) == "spiffe://t/a"
    assert key_value(LimitKey("principal"), headers={}, route=None) is None  # nobody served
    assert key_value(LimitKey("route"), headers={}, route="/r") == "/r"
    assert key_value(LimitKey("address"), headers={}, route=None, address="127.0.0.2") == (
        "127.0.0.2")
    assert len(key_value(LimitKey("header", ("h",)), headers={"h": "x" * 999},
                         route=None) or "") == 256


def test_keyed_buckets_keep_at_most_max_keys() -> None:
    clock = FakeClock()
    buckets = KeyedBuckets(rate=1, burst=1, max_keys=2, clock=clock)
    assert buckets.bucket("a").reserve() == 0.0
    assert buckets.bucket("a").reserve() is None  # a's bucket is empty
    buckets.bucket("b")
    buckets.bucket("a")  # a used: b is now the least recently used
    buckets.bucket("c")  # drops b
    assert len(buckets) == 2
    assert buckets.bucket("a").reserve() is None  # a kept its state
    clock.advance(1.0)
    assert buckets.bucket("a").reserve() == 0.0
