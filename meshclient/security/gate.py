"""The inbound policy pipeline for one request, in Istio's order: authentication (end-user
JWT), the address lists, the CUSTOM checks (the middleware's own `check=` first, then each
matching CUSTOM policy's provider), DENY policies, ALLOW policies, the shorthand rules and
the default. AUDIT and dry-run policies are logged, never enforced.

`flow()` decides; it yields the two things that need I/O (`NeedKeys`: wait for a JWKS
fetch; `RunCheck`: run a check) and returns `Admitted` or `Refused`. `run_sync` and
`run_async` drive it in a thread or in a task, so the middlewares and the handler
decorator, sync or async, share one decision.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..context import RequestAuth
from .authz import Authorizer, Caller, Decision, DenialLog
from .checks import Allow, CheckFn, Deny, RequestView, Verdict, registered_check
from .checks_run import RunCheck, run_check_async, run_check_sync
from .jwks import NeedKeys
from .jwt import Authenticator, Invalid, claim_header_value
from .rbac import claim

audit_log = logging.getLogger("meshclient.security.audit")
Action = NeedKeys | RunCheck
_NOBODY = RequestAuth()


@dataclass(frozen=True, slots=True)
class InboundRequest:
    """What the policy may look at of an inbound request (`headers`: lower-case names)."""

    headers: Mapping[str, str]
    method: str
    path: str
    query: str = ""
    address: str | None = None
    tls: Mapping[str, Any] | None = None
    port: int | None = None
    #: the IP address the server was reached on (Istio's `destination.ip`), when known
    local_ip: str | None = None


@dataclass(frozen=True, slots=True)
class Admitted:
    """Run the handler; apply the header edits to the request it sees first."""

    caller: Caller
    auth: RequestAuth | None = None
    add_headers: tuple[tuple[str, str], ...] = ()
    remove_headers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Refused:
    """Answer this instead of running the handler."""

    status: int
    reason: str  # "unauthenticated" | "denied" | "check"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """The middleware's own check (`MeshMiddleware(app, check=fn)`)."""

    check: CheckFn
    timeout_s: float = 0.2
    fail_open: bool = False
    name: str = field(default="check")


def _www_authenticate(reason: str) -> tuple[tuple[str, str], ...]:
    detail = reason.replace("\\", "").replace('"', "'")
    return (("www-authenticate",
             f'Bearer realm="meshclient", error="invalid_token", '
             f'error_description="{detail}"'),)


def _deny_refused(verdict: Deny) -> Refused:
    return Refused(verdict.status, "check", verdict.headers, verdict.body)


def flow(req: InboundRequest, authn: Authenticator | None, authz: Authorizer | None,
         check: CheckSpec | None, denials: DenialLog,
         named: Callable[[str], CheckFn | None] = registered_check
         ) -> Generator[Action, Any, Admitted | Refused]:
    """One request's decision (see the module docstring). `named` finds the check a
    CUSTOM policy's `provider` names."""
    caller = (authz.identify(headers=req.headers, address=req.address, tls=req.tls)
              if authz is not None else Caller(None, "none", req.address))
    verified = None
    add: list[tuple[str, str]] = []
    remove: list[str] = []
    if authn is not None:
        skip = frozenset({"authorization"}) if caller.source == "token" else frozenset()
        result = yield from authn.authenticate(req.headers, req.query, skip)
        if isinstance(result, Invalid):
            denials.record(caller, Decision(False, "authentication"), req.method, req.path)
            return Refused(401, "unauthenticated", _www_authenticate(result.reason),
                           (result.reason + "\n").encode())
        verified = result
        if verified is not None:
            rule = verified.rule
            if not rule.forward_original_token and verified.location[0] == "header":
                remove.append(verified.location[1])
            for out in rule.output_claim_to_headers:
                value = claim_header_value(claim(verified.claims,
                                                 tuple(out.claim.split("."))))
                if value is not None:
                    add.append((out.header.lower(), value))
    auth = (RequestAuth(verified.principal if verified else None,
                        verified.claims if verified else {},
                        verified.audiences if verified else (), caller.identity)
            if verified is not None or caller.identity is not None else _NOBODY)
    if authz is None and check is None:
        return Admitted(caller, auth, tuple(add), tuple(remove))
    if authz is not None and check is None and not authz.policies:  # the shorthand alone
        return _shorthand(req, authz, caller, denials, auth, tuple(add), tuple(remove))
    view = RequestView(method=req.method, path=req.path, query=req.query,
                       headers=req.headers, host=req.headers.get("host"), port=req.port,
                       destination_ip=req.local_ip,
                       source_ip=req.address, source_principal=caller.identity,
                       request_principal=auth.principal, claims=auth.claims,
                       audiences=auth.audiences)
    if authz is not None:
        denied = authz.addresses(caller)
        if denied is not None:
            denials.record(caller, denied, req.method, req.path)
            return Refused(403, "denied")
    checks: list[RunCheck] = []
    if check is not None:
        checks.append(RunCheck(check.name, check.check, view, check.timeout_s,
                               check.fail_open))
    if authz is not None:
        for policy in authz.policies.custom:
            if not policy.matches(view):
                continue
            fn = named(policy.entry.provider or "")
            if fn is None:
                fn = _missing(policy.entry.provider or "")
            checks.append(RunCheck(policy.entry.provider or policy.name, fn, view,
                                   policy.entry.timeout, policy.entry.fail_open))
            if policy.dry_run:
                checks[-1] = RunCheck(f"{checks[-1].name} (dry-run)", fn, view,
                                      policy.entry.timeout, True)
    for action in checks:
        verdict: Verdict = yield action
        if isinstance(verdict, Deny):
            if action.name.endswith("(dry-run)"):
                audit_log.info("authorization dry-run: check %s would deny %s %s",
                               action.name, req.method, req.path)
                continue
            denials.record(caller, Decision(False, f"check:{action.name}"), req.method,
                           req.path)
            return _deny_refused(verdict)
        add.extend((k.lower(), v) for k, v in verdict.headers)
    if authz is None:
        return Admitted(caller, auth, tuple(add), tuple(remove))
    evaluation = authz.policies.evaluate(view) if authz.policies else None
    if evaluation is not None:
        for name in evaluation.audited_by:
            audit_log.info("authorization audit: %s %s from %s matched %s", req.method,
                           req.path, caller.label, name)
        for name, what in evaluation.dry_run:
            audit_log.info("authorization dry-run: %s %s %s from %s", name, what,
                           f"{req.method} {req.path}", caller.label)
    decision = authz.rules(caller, req.method, req.path, evaluation)
    if not decision.allowed:
        denials.record(caller, decision, req.method, req.path)
        return Refused(403, "denied")
    return Admitted(caller, auth, tuple(add), tuple(remove))


def _shorthand(req: InboundRequest, authz: Authorizer, caller: Caller, denials: DenialLog,
               auth: RequestAuth | None, add: tuple[tuple[str, str], ...] = (),
               remove: tuple[str, ...] = ()) -> Admitted | Refused:
    decision = authz.addresses(caller) or authz.rules(caller, req.method, req.path)
    if not decision.allowed:
        denials.record(caller, decision, req.method, req.path)
        return Refused(403, "denied")
    return Admitted(caller, auth, add, remove)


def quick(req: InboundRequest, authz: Authorizer, denials: DenialLog) -> Admitted | Refused:
    """`flow()` for a section of shorthand rules alone (no authentication, check or
    policies): nothing to wait for, so no generator (the usual case, kept cheap)."""
    caller = authz.identify(headers=req.headers, address=req.address, tls=req.tls)
    auth = RequestAuth(source_principal=caller.identity) if caller.identity else None
    return _shorthand(req, authz, caller, denials, auth)


def _missing(name: str) -> CheckFn:
    def missing(view: RequestView) -> Verdict:
        raise LookupError(f"no check is registered as {name!r}")
    return missing


def run_sync(gen: Generator[Action, Any, Admitted | Refused]) -> Admitted | Refused:
    """Drive `flow()` in the calling thread (it blocks for JWKS fetches and checks, within
    their bounds)."""
    try:
        action = next(gen)
        while True:
            if isinstance(action, NeedKeys):
                action.run()
                action = gen.send(None)
            else:
                action = gen.send(run_check_sync(action))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def run_async(gen: Generator[Action, Any, Admitted | Refused]) -> Admitted | Refused:
    """Drive `flow()` in a task: JWKS waits in an executor, checks per `run_check_async`."""
    try:
        action = next(gen)
        while True:
            if isinstance(action, NeedKeys):
                await asyncio.get_running_loop().run_in_executor(None, action.run)
                action = gen.send(None)
            else:
                action = gen.send(await run_check_async(action))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


__all__ = ["Admitted", "Allow", "CheckSpec", "InboundRequest", "Refused", "flow", "run_async",
           "run_sync"]
