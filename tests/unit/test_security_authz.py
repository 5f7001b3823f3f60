"""Pure authorization decisions and the security policy sections' validation."""

from __future__ import annotations

import pytest

from meshclient.errors import PolicyError
from meshclient.policy import Policy
from meshclient.policy._security import AuthorizationPolicy, AuthzRule
from meshclient.security.authz import Authorizer, Caller


def authz(**kw: object) -> Authorizer:
    return Authorizer(AuthorizationPolicy(**kw), environ={"T": "sekret"})  # type: ignore[arg-type]


def test_first_matching_rule_wins_then_default() -> None:
    a = authz(default="allow", rules=(
        AuthzRule(action="deny", methods=("DELETE",)),
        AuthzRule(action="allow", callers=("svc-*",), name="svcs"),
        AuthzRule(action="deny", paths=("/private/*",)),
    ))
    svc = Caller("svc-a", "header")
    assert a.decide(svc, "DELETE", "/x").rule == "rules[0]"
    assert a.decide(svc, "GET", "/private/x").allowed  # rule 1 before rule 2
    assert a.decide(Caller(None, "none"), "GET", "/private/x").rule == "rules[2]"
    assert a.decide(Caller(None, "none"), "GET", "/x") == a.decide(svc, "PUT", "/x").__class__(
        True, "default")


def test_wildcard_and_anonymous_callers() -> None:
    a = authz(rules=(AuthzRule(action="allow", callers=("*",), paths=("/any",)),
                     AuthzRule(action="allow", callers=("anonymous",), paths=("/open",))))
    assert a.decide(Caller("x", "token"), "GET", "/any").allowed
    assert not a.decide(Caller(None, "none"), "GET", "/any").allowed
    assert a.decide(Caller(None, "none"), "GET", "/open").allowed
    assert not a.decide(Caller("x", "token"), "GET", "/open").allowed


def test_addresses_and_tokens() -> None:
    a = authz(default="allow", deny_addresses=("10.0.0.0/8",), allow_addresses=("10.0.0.0/8",
              "192.168.1.0/24"), tokens=("ops=env:T",))
    assert a.decide(Caller(None, "none", "10.1.2.3"), "GET", "/").rule == "deny_addresses"
    assert a.decide(Caller(None, "none", "172.16.0.1"), "GET", "/").rule == "allow_addresses"
    assert a.decide(Caller(None, "none", None), "GET", "/").rule == "allow_addresses"
    assert a.decide(Caller(None, "none", "192.168.1.9"), "GET", "/").allowed
    assert a.identify(headers={"authorization": "Bearer sekret"}).identity == "ops"
    assert a.identify(headers={"authorization": "Bearer sekre"}).identity is None
    assert a.identify(headers={"authorization": "Basic sekret"}).identity is None


def test_tls_name_fallback_when_no_chain() -> None:
    a = authz()
    caller = a.identify(headers={}, tls={"client_cert_chain": [],
                                         "client_cert_name": "CN=reports,O=Acme"})
    assert (caller.identity, caller.source) == ("reports", "tls")


def test_authorization_policy_errors() -> None:
    with pytest.raises(PolicyError) as info:
        Policy.from_dict({"authorization": {"default": "maybe", "deny_addresses": ["nope"],
                                            "tokens": ["x=plain-secret"],
                                            "rules": [{"action": "allow"}]}})
    text = str(info.value)
    assert "authorization.default must be one of allow, deny: 'maybe'" in text
    assert "authorization.deny_addresses[0] must be an IP address or CIDR: 'nope'" in text
    assert "authorization.tokens[0]" in text and "plain-secret" not in text
    with pytest.raises(PolicyError, match=r"services\.a\.auth\.bearer or oauth2 must be set"):
        Policy.from_dict({"services": {"a": {"auth": {}}}})
    with pytest.raises(PolicyError, match=r"token_url must be an http:// or https:// URL"):
        Policy.from_dict({"services": {"a": {"auth": {"oauth2": {
            "token_url": "ftp://x", "client_id": "c", "client_secret_env": "S"}}}}})
