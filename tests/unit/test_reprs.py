"""Stateful objects show their state in `repr()` (what a debugger or a log line sees)."""

from __future__ import annotations

import httpx

from meshclient._core.actions import Send
from meshclient._core.first import First, start_first
from meshclient._runtime import Registry, ServiceRuntime
from meshclient.policy import Policy, PolicyStore
from meshclient.policy.apply import Applier
from meshclient.security.registry import SecurityRegistry
from meshclient.telemetry._attempt import Attempt
from meshclient.telemetry.tracing import Call
from meshclient.testing import FakeClock, SeededRng
from meshclient.transport._mirror import MirrorSender

ENDPOINTS = ["127.0.0.2:80", "127.0.0.3:80"]


def _runtime(clock: FakeClock) -> ServiceRuntime:
    policy = Policy.from_dict({"services": {"users": {
        "endpoints": ENDPOINTS, "retry": {"attempts": 2, "on": ["connect-error"]}}}})
    return Registry(clock, SeededRng(3)).runtime(policy.resolved["users"])


def test_service_runtime_and_its_parts() -> None:
    rt = _runtime(FakeClock())
    text = repr(rt)
    assert text.startswith("<ServiceRuntime users endpoints=2 discovery=static ")
    assert "<LoadBalancer users" in text  # the balancer's own repr
    resilience = repr(rt.resilience)
    assert resilience.startswith("<ServiceResilience users attempts=2 on=['connect-error'] ")
    assert resilience in text
    budget = repr(rt.resilience.budget)
    assert budget.startswith("<ServiceBudget balance=") and "retries=0 hedges=0" in budget
    rt.resilience.budget.retries += 1
    assert "retries=1" in repr(rt.resilience)
    assert "<LatencyTracker samples=False filled=0/" in resilience


def test_first_shows_its_attempt_and_its_answer() -> None:
    clock = FakeClock()
    rt = _runtime(clock)
    first = start_first(httpx.Request("GET", "http://users/a"), rt, None, None)
    assert isinstance(first, First)
    before = repr(first)
    assert before.startswith("<First GET http://users/a endpoint=127.0.0.")
    assert before.endswith(" in flight>")
    first.finish(httpx.Response(200, request=first.sent))
    # a final answer needs no flow: the attempt is over, its endpoint still shown
    assert "endpoint=127.0.0." in repr(first) and repr(first).endswith(" final>")


def test_first_that_hands_over_still_shows_its_attempt() -> None:
    rt = _runtime(FakeClock())
    first = start_first(httpx.Request("GET", "http://users/a"), rt, None, None)
    assert isinstance(first, First)
    flow = first.finish(None, httpx.ConnectError("refused"))
    assert flow is not None
    # the outcome travels to the flow in its `Resume`; the first attempt still names itself
    assert repr(first).startswith("<First GET http://users/a endpoint=127.0.0.")


def test_call_and_attempt() -> None:
    request = httpx.Request("GET", "http://users/a")
    call = Call(request, "users", None, None)
    assert repr(call) == "<Call GET users attempts=0 status=None attempt=idle traced=False>"
    rt = _runtime(FakeClock())
    state = rt.balancer.states()[0]
    attempt = Attempt(Send(request, state.endpoint, "users", 2), None, None)
    assert repr(attempt) == (f"<Attempt users #2 endpoint={state.key} status=None "
                             "error=None ended=False>")
    attempt.observe(httpx.Response(503), None)
    attempt.drop()
    assert "status=503" in repr(attempt) and repr(attempt).endswith("ended=True>")


def test_control_security_and_mirror() -> None:
    store = PolicyStore(Policy.from_dict({"version": "v7"}))
    applier = Applier(store, "http://127.0.0.2:1/policy")
    text = repr(applier)
    assert text.startswith("<Applier http://127.0.0.2:1/policy version='v7' RefreshStats(")
    assert text.endswith("last_errors=0>")
    assert repr(SecurityRegistry()) == "<SecurityRegistry guards=[] routes=[] failed=[]>"
    sender = MirrorSender(Registry(FakeClock(), SeededRng(1)))
    assert repr(sender).startswith("<MirrorSender in_flight=0/")
    assert "MirrorStats(sent=0, dropped=0, failed=0)" in repr(sender)
