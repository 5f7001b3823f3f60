"""The transport remembers per host and policy snapshot what needs no routing or admission;
a new snapshot is seen by the next request (routes, limits or a new endpoint apply at once)."""

from __future__ import annotations

import httpx

from meshclient import MeshTransport, Policy, PolicyStore


def _policy(users: dict[str, object], **more: object) -> Policy:
    return Policy.from_dict({"services": {"users": users, **more}})


def test_a_new_snapshot_applies_to_the_next_request() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.url.host}:{request.url.port}")
        return httpx.Response(200)

    store = PolicyStore(_policy({"endpoints": ["127.0.0.2:8001"]}))
    with httpx.Client(transport=MeshTransport(store, inner=httpx.MockTransport(answer))) as c:
        c.get("http://users/").read()
        c.get("http://users/").read()  # remembered: same snapshot
        c.get("http://elsewhere:9/").read()  # passthrough, remembered too
        store.replace(_policy({"endpoints": ["127.0.0.3:8001"]}))
        c.get("http://users/").read()
        store.replace(_policy({"endpoints": ["127.0.0.3:8001"],
                               "routes": [{"to": [{"service": "v2"}]}]},
                              v2={"endpoints": ["127.0.0.4:8001"]}))
        c.get("http://users/").read()
        c.get("http://elsewhere:9/").read()
    assert seen == ["127.0.0.2:8001", "127.0.0.2:8001", "elsewhere:9", "127.0.0.3:8001",
                    "127.0.0.4:8001", "elsewhere:9"]


def test_guarded_and_routed_services_are_decided_per_request() -> None:
    transport = MeshTransport(_policy({"endpoints": ["127.0.0.2:8001"], "limits": {"rate": 1000}},
                                      v2={"endpoints": ["127.0.0.4:8001"],
                                          "routes": [{"to": [{"service": "users"}]}]}),
                              inner=httpx.MockTransport(lambda r: httpx.Response(200)))
    for host in ("users", "v2"):
        request = httpx.Request("GET", f"http://{host}/")
        service, decision, _, rt = transport._begin(request, transport.store.current)
        assert service is not None and decision is not None
        assert rt is transport.registry.runtime(decision.destination)
    assert "users" not in transport._plain and "v2" not in transport._plain
    transport.close()


def test_the_remembered_runtime_follows_the_snapshot() -> None:
    store = PolicyStore(_policy({"endpoints": ["127.0.0.2:8001"]}))
    transport = MeshTransport(store, inner=httpx.MockTransport(lambda r: httpx.Response(200)))
    request = httpx.Request("GET", "http://users/")
    first = transport._begin(request, store.current)
    assert transport._plain["users"] == (store.current, first)  # remembered for the snapshot
    rt = first[3]
    assert rt is not None and rt.service is store.current.resolved["users"]
    store.replace(_policy({"endpoints": ["127.0.0.3:8001"]}))
    again = transport._begin(request, store.current)
    assert again is not first and again[3] is rt  # the same runtime, moved to the new one
    assert rt.service is store.current.resolved["users"]
    assert [s.key for s in rt.balancer.states()] == ["127.0.0.3:8001"]
    with httpx.Client(transport=transport) as client:  # the remembered answer is used
        assert client.get("http://users/").status_code == 200
    assert transport._plain["users"] == (store.current, again)


def test_the_cache_rule_is_one_named_function() -> None:
    from meshclient.transport._base import Begun, per_request

    policy = _policy({"endpoints": ["127.0.0.2:8001"]},
                     v2={"endpoints": ["127.0.0.4:8001"], "routes": [{"to": [{"service": "users"}]}]})
    transport = MeshTransport(policy, inner=httpx.MockTransport(lambda r: httpx.Response(200)))
    begun = transport._route(httpx.Request("GET", "http://users/"))
    assert isinstance(begun, Begun) and begun.guard is None and begun.runtime is not None
    assert not per_request(policy.resolved["users"], None)
    assert per_request(policy.resolved["v2"], None)  # routes: decided per request
    assert transport._route(httpx.Request("GET", "http://users/")) is begun  # remembered
    assert transport._route(httpx.Request("GET", "http://nowhere/")) == Begun(None, None, None, None)
    transport.close()
