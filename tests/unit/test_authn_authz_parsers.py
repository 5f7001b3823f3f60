"""Properties of the parsers added for end-user authentication and Istio-style
authorization: `authentication`/`authorization` documents give a `Policy` or a `PolicyError`
and round-trip through `to_dict()`; cache headers, JWKS documents, tokens and claims never
raise anything unplanned; Istio's string matching is exact, prefix, suffix or presence."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshclient import Policy, PolicyError
from meshclient.security.cache_control import MAX_TTL_S, MIN_TTL_S, max_age, ttl
from meshclient.security.jwks import JwksError, parse_jwks
from meshclient.security.jwt import Authenticator, Invalid, claim_header_value
from meshclient.security.rbac import string_matcher
from tests.servers.jwks import SigningKey

from .test_policy_fuzz import STRANGE_TEXT, VALUES, _mutate

KEY = SigningKey("EC", "p1")
DOC: dict[str, Any] = {
    "authentication": {"jwt": [{
        "issuer": "https://issuer.test", "audiences": ["orders"],
        "jwks": json.dumps({"keys": [KEY.jwk]}), "from_headers": [{"name": "x-jwt",
                                                                    "prefix": "Bearer "}],
        "from_params": ["token"], "output_claim_to_headers": [{"header": "x-sub",
                                                               "claim": "sub"}],
        "leeway": "30s"}]},
    "authorization": {"policies": [
        {"name": "deny-admin", "action": "DENY", "rules": [{
            "from": [{"source": {"not_request_principals": ["*"],
                                 "ip_blocks": ["10.0.0.0/8"]}}],
            "to": [{"operation": {"paths": ["/admin*"], "methods": ["POST"],
                                  "ports": ["8080"]}}],
            "when": [{"key": "request.auth.claims[realm][role]", "values": ["guest"]}]}]},
        {"action": "CUSTOM", "provider": "opa", "timeout": "150ms", "fail_open": True,
         "rules": [{}]},
        {"action": "ALLOW", "dry_run": True, "rules": [{}]}]},
}
_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
AUTHN = Authenticator(Policy.from_dict(DOC).authentication)  # type: ignore[arg-type]


def test_the_document_parses_and_round_trips() -> None:
    policy = Policy.from_dict(DOC)
    again = Policy.from_dict(policy.to_dict())
    assert again == policy
    rule = policy.authorization.policies[0].rules[0]  # type: ignore[union-attr]
    assert rule.from_[0].source.ip_blocks == ("10.0.0.0/8",)
    assert "from" in policy.to_dict()["authorization"]["policies"][0]["rules"][0]


@pytest.mark.parametrize(("path", "value", "message"), [
    (("authorization", "policies", 0, "action"), "PERMIT",
     "authorization.policies[0].action must be one of ALLOW, DENY, AUDIT, CUSTOM: 'PERMIT'"),
    (("authorization", "policies", 1, "provider"), None,
     "authorization.policies[1].provider must be set for a CUSTOM action"),
    (("authorization", "policies", 0, "rules", 0, "when", 0, "key"), "request.body",
     "key is not a known condition key: 'request.body'"),
    (("authorization", "policies", 0, "rules", 0, "from", 0, "source", "ip_blocks", 0),
     "10.0.0.300", "ip_blocks[0] must be an IP address or CIDR: '10.0.0.300'"),
    (("authorization", "policies", 0, "rules", 0, "to", 0, "operation", "paths", 0), "/a*b",
     "paths[0] may hold `*` only at its start or end: '/a*b'"),
    (("authentication", "jwt", 0, "algorithms"), ["HS256"],
     "algorithms ['HS256'] need secret_env or secret_file"),
    (("authentication", "jwt", 0, "algorithms"), ["none"],
     "algorithms must be one of"),
    (("authentication", "jwt", 0, "jwks"), "{}", "jwks must be a JWKS document"),
])
def test_bad_values_are_named_with_their_path(path: tuple[Any, ...], value: Any,
                                              message: str) -> None:
    doc = copy.deepcopy(DOC)
    parent: Any = doc
    for key in path[:-1]:
        parent = parent[key]
    if value is None:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    with pytest.raises(PolicyError) as info:
        Policy.from_dict(doc)
    assert any(message in e for e in info.value.errors), info.value.errors


@_SETTINGS
@given(st.data())
def test_mutated_sections_give_a_policy_or_a_policy_error(data: st.DataObject) -> None:
    doc = _mutate(copy.deepcopy(DOC), data)
    try:
        policy = Policy.from_dict(doc)
    except PolicyError as exc:
        assert exc.errors and all(isinstance(e, str) and e for e in exc.errors)
    else:
        assert Policy.from_dict(policy.to_dict()) == policy


HEADER_TEXT = STRANGE_TEXT | st.sampled_from([
    "max-age=60", "public, max-age=0", "no-cache", "max-age=\"30\"", "s-maxage=5, max-age=9",
    "max-age=99999999999999999999", "max-age=-1", "max-age=1e3", "private"])


@_SETTINGS
@given(cache_control=st.none() | HEADER_TEXT, expires=st.none() | HEADER_TEXT,
       date=st.none() | HEADER_TEXT, default=st.floats(0, 1e6))
def test_cache_headers_give_a_bounded_ttl(cache_control: str | None, expires: str | None,
                                          date: str | None, default: float) -> None:
    headers = {k: v for k, v in (("cache-control", cache_control), ("expires", expires),
                                 ("date", date)) if v is not None}
    assert MIN_TTL_S <= ttl(headers, default, 1.7e9) <= MAX_TTL_S
    age = max_age(cache_control)
    assert age is None or age >= 0


def test_cache_control_examples() -> None:
    assert max_age("public, max-age=60") == 60
    assert max_age("s-maxage=5, max-age=9") == 5
    assert max_age("no-store") == 0
    assert ttl({"cache-control": "max-age=120"}, 600, 0) == 120
    assert ttl({}, 600, 0) == 600
    assert ttl({"expires": "Thu, 01 Dec 1994 16:00:00 GMT",
                "date": "Thu, 01 Dec 1994 15:59:00 GMT"}, 600, 0) == 60


@_SETTINGS
@given(VALUES)
def test_a_jwks_document_gives_keys_or_a_jwks_error(value: Any) -> None:
    for doc in (value, {"keys": value}, {"keys": [value, KEY.jwk]}):
        try:
            text = json.dumps(doc)
        except (ValueError, TypeError, RecursionError):
            continue
        try:
            keys = parse_jwks(text)
        except JwksError:
            continue
        assert all(k.algorithms for k in keys.keys) or not keys.keys


@_SETTINGS
@given(token=STRANGE_TEXT | st.builds(lambda a, b, c: f"{a}.{b}.{c}", STRANGE_TEXT,
                                      STRANGE_TEXT, STRANGE_TEXT),
       where=st.sampled_from(["header", "param"]))
def test_any_presented_string_is_refused_without_raising(token: str, where: str) -> None:
    headers = {"x-jwt": "Bearer " + token} if where == "header" else {}
    query = "token=" + token if where == "param" else ""
    gen = AUTHN.authenticate(headers, query)
    try:
        next(gen)
    except StopIteration as stop:
        result = stop.value
    else:  # pragma: no cover - inline keys never need a fetch
        raise AssertionError("an inline JWKS never asks for a fetch")
    assert result is None or isinstance(result, Invalid)


@_SETTINGS
@given(VALUES)
def test_a_claim_becomes_a_header_value_or_nothing(value: Any) -> None:
    out = claim_header_value(value)
    assert out is None or isinstance(out, str)


@_SETTINGS
@given(core=st.text(alphabet=st.characters(blacklist_characters="*"), min_size=1, max_size=8),
       value=st.text(max_size=12))
def test_istio_string_matching(core: str, value: str) -> None:
    assert string_matcher(core)(value) == (value == core)
    assert string_matcher(core + "*")(value) == value.startswith(core)
    assert string_matcher("*" + core)(value) == value.endswith(core)
    assert string_matcher("*")(value) == bool(value)
