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


def _asgi_app(scope: object, receive: object, send: object) -> None:
    raise AssertionError("not called")


def _wsgi_app(environ: object, start_response: object) -> list[bytes]:
    raise AssertionError("not called")


def test_inbound_middlewares_and_their_gate() -> None:
    import meshclient.asgi
    import meshclient.wsgi

    store = PolicyStore(Policy.from_dict({"version": "v3"}))
    asgi = meshclient.asgi.MeshMiddleware(_asgi_app, max_concurrency=4, policy=store,  # type: ignore[arg-type]
                                          service="users")
    text = repr(asgi)
    assert text.startswith("<asgi.MeshMiddleware app=_asgi_app limit=<ConcurrencyLimit 0/4> ")
    assert ("<InboundGate <AuthorizerSource store='v3' authorizer=None> "
            "<DenialLog users total=0 pairs=0>>") in text
    wsgi = meshclient.wsgi.MeshMiddleware(_wsgi_app, policy=store)  # type: ignore[arg-type]
    assert repr(wsgi).startswith("<wsgi.MeshMiddleware app=_wsgi_app limit=None <InboundGate ")


def test_server_scope_lazy_gate_and_instruments() -> None:
    from opentelemetry.metrics import NoOpMeterProvider

    from meshclient.server.decorators import LazyGate
    from meshclient.server.inbound import ServerScope
    from meshclient.telemetry.metrics import Instruments

    scope = ServerScope({}, "GET", "/v1/users")
    text = repr(scope)
    assert text.startswith("<ServerScope GET /v1/users new caller=None permit=False limit=None ")
    assert "Inbound(" in text
    lazy = LazyGate(PolicyStore(Policy.from_dict({})), "orders")
    assert repr(lazy) == "<LazyGate service='orders' gate=None>"
    lazy.get()
    assert repr(lazy).startswith("<LazyGate service='orders' gate=<InboundGate ")
    instruments = Instruments(NoOpMeterProvider().get_meter("meshclient-test"))
    assert repr(instruments).startswith("<Instruments ")
    assert repr(instruments).endswith(" from NoOpMeter 'meshclient-test'>")


def test_traced_first_shows_its_call() -> None:
    from meshclient.transport._traced import TracedFirst

    rt = _runtime(FakeClock())
    request = httpx.Request("GET", "http://users/a")
    call = Call(request, "users", None, None)
    first = start_first(request, rt, None, None,
                        lambda *args: TracedFirst(call, *args))
    assert isinstance(first, TracedFirst)
    text = repr(first)
    assert text.startswith("<First GET http://users/a endpoint=127.0.0.")
    assert text.endswith(" in flight <Call GET users attempts=0 status=None attempt=idle "
                         "traced=False>>")


def test_trust_and_breaker_storage() -> None:
    from meshclient.policy.trust import RemoteTrust
    from meshclient.resilience.breaker_storage import FallbackStorage, RedisHealth

    trust = RemoteTrust(Policy.from_dict({"version": "local-1"}))
    assert repr(trust) == "<RemoteTrust local='local-1' applied=None recent=0>"
    health = RedisHealth("redis://127.0.0.2:6390/0", client=None)
    assert repr(health) == "<RedisHealth redis://127.0.0.2:6390/0 up changes=0>"
    storage = FallbackStorage(health, "meshclient:users")
    assert repr(storage) == ("<FallbackStorage meshclient:users <RedisHealth "
                             "redis://127.0.0.2:6390/0 up changes=0> local=closed>")


#: Stateful classes and the `__repr__` each defines itself (not inherited from `object`).
STATEFUL = [
    "meshclient.asgi:MeshMiddleware", "meshclient.wsgi:MeshMiddleware",
    "meshclient.security.gated:Gated", "meshclient.security.inbound:InboundGate",
    "meshclient.security.inbound:AuthorizerSource", "meshclient.security.authz:DenialLog",
    "meshclient.server.inbound:ServerScope", "meshclient.server.decorators:LazyGate",
    "meshclient.telemetry.metrics:Instruments", "meshclient.transport._traced:TracedFirst",
    "meshclient._core.first:First", "meshclient._core.hedging:Secondary",
    "meshclient.telemetry.tracing:Call", "meshclient._runtime:ServiceRuntime",
    "meshclient.policy.trust:RemoteTrust", "meshclient.policy.apply:Applier",
    "meshclient.resilience.breaker_storage:RedisHealth",
    "meshclient.resilience.breaker_storage:FallbackStorage",
]


def test_every_listed_stateful_class_has_its_own_repr() -> None:
    import importlib

    for dotted in STATEFUL:
        module, _, name = dotted.partition(":")
        cls = getattr(importlib.import_module(module), name)
        owner = next(c for c in cls.__mro__ if "__repr__" in vars(c))
        assert owner is not object, f"{dotted} has no __repr__"
        assert owner.__module__.startswith("meshclient"), (dotted, owner)
