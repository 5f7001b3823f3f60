"""Istio's AuthorizationPolicy semantics, as a table: policies from Istio's documentation
examples (translated to meshclient's format), each with requests and the decision Istio
gives them. Evaluated by the pipeline every entry point runs (`security.gate`), with
tokens verified for real against an inline JWKS."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from meshclient.policy import Policy
from meshclient.security.authz import DenialLog
from meshclient.security.checks import Allow, Deny, RequestView, register_check, unregister_check
from meshclient.security.gate import Admitted, InboundRequest, Refused, flow, run_sync
from meshclient.security.inbound import AuthorizerSource
from tests.servers.jwks import SigningKey

KEY = SigningKey("RSA", "k1")
ISS = "testing@secure.istio.io"
SLEEP = "spiffe://cluster.local/ns/default/sa/sleep"
OTHER = "spiffe://cluster.local/ns/foo/sa/other"


def _status(authorization: dict[str, Any] | None, *, method: str = "GET", path: str = "/",
            caller: str | None = None, address: str = "10.0.0.1", token: dict[str, Any]
            | None = None, headers: dict[str, str] | None = None, host: str = "httpbin",
            port: int = 8000, local_ip: str | None = "10.0.0.9") -> int:
    doc: dict[str, Any] = {"authentication": {"jwt": [{
        "issuer": ISS, "jwks": json.dumps({"keys": [KEY.jwk]})}]}}
    if authorization is not None:
        doc["authorization"] = {"trust_caller_header": "x-caller", **authorization}
    source = AuthorizerSource(Policy.from_dict(doc))
    hdrs = {"host": host, **(headers or {})}
    if caller is not None:
        hdrs["x-caller"] = caller
    if token is not None:
        hdrs["authorization"] = "Bearer " + KEY.token(**{"iss": ISS, "aud": None, **token})
    req = InboundRequest(hdrs, method, path, "", address, None, port, local_ip)
    outcome = run_sync(flow(req, source.authenticator(), source.current(), None,
                            DenialLog()))
    return 200 if isinstance(outcome, Admitted) else outcome.status


def P(*policies: dict[str, Any]) -> dict[str, Any]:
    return {"policies": list(policies)}


def src(**fields: Any) -> dict[str, Any]:
    return {"from": [{"source": fields}]}


def op(**fields: Any) -> dict[str, Any]:
    return {"to": [{"operation": fields}]}


VIEWER = P({"name": "httpbin-viewer", "action": "ALLOW", "rules": [
    {**src(principals=["cluster.local/ns/default/sa/sleep"]), **op(methods=["GET"])}]})
REQUIRE_JWT = P({"name": "require-jwt", "action": "ALLOW", "rules": [
    src(request_principals=[f"{ISS}/{ISS}"])]})
GROUPS = P({"name": "require-group", "action": "ALLOW", "rules": [
    {**src(request_principals=["*"]),
     "when": [{"key": "request.auth.claims[groups]", "values": ["group1"]}]}]})
NESTED = P({"name": "nested", "action": "ALLOW", "rules": [
    {"when": [{"key": "request.auth.claims[nested][key1]", "values": ["valueA"]}]}]})
INGRESS = P({"name": "ingress-policy", "action": "ALLOW", "rules": [
    src(ip_blocks=["1.2.3.4", "5.6.7.0/24"])]})
DENY_GET_HEADER = P({"name": "deny-method-get", "action": "DENY", "rules": [
    {**op(methods=["GET"], paths=["/ip"]),
     "when": [{"key": "request.headers[x-token]", "not_values": ["admin"]}]}]})
NOT_NAMESPACE = P({"name": "deny-others", "action": "DENY", "rules": [
    src(not_namespaces=["foo"])]})
DENY_OVER_ALLOW = P({"name": "allow-all", "action": "ALLOW", "rules": [{}]},
                    {"name": "deny-delete", "action": "DENY", "rules": [op(methods=["DELETE"])]})
PATHS = P({"name": "paths", "action": "ALLOW", "rules": [
    op(paths=["/info*", "*/healthz", "/exact"], not_paths=["/info/secret"])]})
HOSTS_PORTS = P({"name": "hosts", "action": "ALLOW", "rules": [
    op(hosts=["*.example.com"], ports=["8000"])]})
DESTINATION_IP = P({"name": "dst", "action": "ALLOW", "rules": [
    {"when": [{"key": "destination.ip", "values": ["10.0.0.0/24"]}]}]})
AUDIENCES = P({"name": "aud", "action": "ALLOW", "rules": [
    {"when": [{"key": "request.auth.audiences", "values": ["bookstore.example.com"]}]}]})
DRY_RUN = P({"name": "dry-deny", "action": "DENY", "dry_run": True, "rules": [{}]})
AUDIT = P({"name": "audit-headers", "action": "AUDIT", "rules": [op(paths=["/headers"])]})

TABLE = [
    ("no authorization section: allow", None, {}, 200),
    ("no ALLOW policy: allow", P({"action": "DENY", "rules": [op(paths=["/x"])]}), {}, 200),
    ("allow-nothing denies all", P({"name": "allow-nothing", "action": "ALLOW"}), {}, 403),
    ("deny-all", P({"action": "DENY", "rules": [{}]}), {"path": "/a"}, 403),
    ("allow-all", P({"action": "ALLOW", "rules": [{}]}), {"method": "POST"}, 200),
    ("viewer: sleep GET", VIEWER, {"caller": SLEEP}, 200),
    ("viewer: sleep POST", VIEWER, {"caller": SLEEP, "method": "POST"}, 403),
    ("viewer: other GET", VIEWER, {"caller": OTHER}, 403),
    ("require-jwt: valid token", REQUIRE_JWT, {"token": {"sub": ISS}}, 200),
    ("require-jwt: no token", REQUIRE_JWT, {}, 403),
    ("require-jwt: other subject", REQUIRE_JWT, {"token": {"sub": "eve"}}, 403),
    ("invalid token: 401 before authorization", REQUIRE_JWT,
     {"token": {"sub": ISS, "exp": 1}}, 401),
    ("claims: group in list", GROUPS, {"token": {"groups": ["group2", "group1"]}}, 200),
    ("claims: group as string", GROUPS, {"token": {"groups": "group1"}}, 200),
    ("claims: group missing", GROUPS, {"token": {"groups": ["group2"]}}, 403),
    ("nested claim", NESTED, {"token": {"nested": {"key1": "valueA"}}}, 200),
    ("nested claim differs", NESTED, {"token": {"nested": {"key1": "valueB"}}}, 403),
    ("ip block exact", INGRESS, {"address": "1.2.3.4"}, 200),
    ("ip block cidr", INGRESS, {"address": "5.6.7.8"}, 200),
    ("ip block outside", INGRESS, {"address": "5.6.8.1"}, 403),
    ("deny GET /ip without admin token", DENY_GET_HEADER, {"path": "/ip"}, 403),
    ("GET /ip with admin token", DENY_GET_HEADER,
     {"path": "/ip", "headers": {"x-token": "admin"}}, 200),
    ("GET /other", DENY_GET_HEADER, {"path": "/other"}, 200),
    ("notNamespaces: from foo", NOT_NAMESPACE, {"caller": OTHER}, 200),
    ("notNamespaces: from default", NOT_NAMESPACE, {"caller": SLEEP}, 403),
    ("notNamespaces: anonymous", NOT_NAMESPACE, {}, 403),
    ("DENY overrides ALLOW", DENY_OVER_ALLOW, {"method": "DELETE"}, 403),
    ("ALLOW when no DENY matches", DENY_OVER_ALLOW, {"method": "GET"}, 200),
    ("path prefix", PATHS, {"path": "/info/x"}, 200),
    ("path suffix", PATHS, {"path": "/a/b/healthz"}, 200),
    ("path exact", PATHS, {"path": "/exact"}, 200),
    ("path exact is not a prefix", PATHS, {"path": "/exact/more"}, 403),
    ("notPaths", PATHS, {"path": "/info/secret"}, 403),
    ("host suffix and port", HOSTS_PORTS, {"host": "api.Example.com"}, 200),
    ("host with port in header", HOSTS_PORTS, {"host": "api.example.com:8000"}, 200),
    ("wrong port", HOSTS_PORTS, {"host": "api.example.com", "port": 9000}, 403),
    ("destination.ip inside", DESTINATION_IP, {}, 200),
    ("destination.ip outside", DESTINATION_IP, {"local_ip": "10.0.1.9"}, 403),
    ("destination.ip unknown", DESTINATION_IP, {"local_ip": None}, 403),
    ("audience", AUDIENCES, {"token": {"aud": ["bookstore.example.com"]}}, 200),
    ("dry-run DENY is not enforced", DRY_RUN, {}, 200),
    ("AUDIT does not decide", AUDIT, {"path": "/headers"}, 200),
]


@pytest.mark.parametrize(("policy", "request_", "expected"),
                         [t[1:] for t in TABLE], ids=[t[0] for t in TABLE])
def test_istio_table(policy: dict[str, Any] | None, request_: dict[str, Any],
                     expected: int) -> None:
    assert _status(policy, **request_) == expected


def test_shorthand_rules_still_decide_beside_policies() -> None:
    section = {"rules": [{"action": "allow", "callers": ["frontend"]}],
               **P({"action": "DENY", "rules": [op(paths=["/admin*"])]})}
    assert _status(section, caller="frontend") == 200
    assert _status(section, caller="frontend", path="/admin/x") == 403  # DENY first
    assert _status(section, caller="other") == 403  # the shorthand's default: deny


def test_dry_run_and_audit_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, "meshclient.security.audit"):
        _status(P(*DRY_RUN["policies"], *AUDIT["policies"]), path="/headers")
    text = caplog.text
    assert "dry-deny would deny GET /headers" in text
    assert "matched audit-headers" in text


@pytest.mark.parametrize("verdict", [Allow(), Deny(451, body=b"no")])
def test_custom_policy_consults_its_registered_check(verdict: Any) -> None:
    seen: list[RequestView] = []

    def check(view: RequestView) -> Any:
        seen.append(view)
        return verdict

    register_check("table-check", check)
    try:
        section = P({"action": "CUSTOM", "provider": "table-check",
                     "rules": [op(paths=["/admin*"])]},
                    {"action": "ALLOW", "rules": [{}]})
        assert _status(section, path="/public") == 200
        assert not seen  # its rules did not match: not consulted
        expected = 200 if isinstance(verdict, Allow) else 451
        assert _status(section, path="/admin/x", token={"sub": "bob"}) == expected
        assert seen[0].request_principal == f"{ISS}/bob"
    finally:
        unregister_check("table-check")


def test_custom_policy_naming_no_check_fails_closed() -> None:
    section = P({"action": "CUSTOM", "provider": "nobody", "rules": [{}]})
    assert _status(section) == 403
    section["policies"][0]["fail_open"] = True
    assert _status(section) == 200


def test_refusal_detail() -> None:
    doc = {"authentication": {"jwt": [{"issuer": ISS,
                                       "jwks": json.dumps({"keys": [KEY.jwk]})}]}}
    source = AuthorizerSource(Policy.from_dict(doc))
    req = InboundRequest({"authorization": "Bearer " + KEY.token(iss=ISS, exp=1)}, "GET", "/")
    outcome = run_sync(flow(req, source.authenticator(), None, None, DenialLog()))
    assert isinstance(outcome, Refused) and outcome.body == b"Jwt is expired\n"
