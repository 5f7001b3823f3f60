"""One-layer retries across real hops: client -> a (meshclient inside) -> c (all 503), and
client -> b -> c -> leaf with b, c and leaf as real processes."""

from __future__ import annotations

import math
import time
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import meshclient
import meshclient.asgi
import meshclient.wsgi
from meshclient.context import RETRIES_SPENT_HEADER, Inbound, inbound_context
from meshclient.policy import Policy
from meshclient.policy._model import BudgetPolicy
from meshclient.testing import LoopbackCluster
from tests.servers.caller import Caller
from tests.servers.chain import BUDGET_TTL_S, CALL_TIMEOUT_S, ChainService
from tests.servers.hop import Hop
from tests.servers.ports import free_port
from tests.servers.process import started
from tests.servers.threaded import serve_asgi, serve_wsgi


def retry(one_layer: bool) -> dict[str, Any]:
    return {"attempts": 3, "one_layer": one_layer, "backoff": {"base": "1ms", "max": "2ms"}}


@pytest.mark.slow
@pytest.mark.parametrize("one_layer", [True, False])
def test_only_one_layer_retries(mesh, one_layer: bool) -> None:
    with LoopbackCluster(2, first=20) as leaf:
        for b in leaf.backends:
            b.set(status=503)
        inner = Policy.from_dict({"services": {"c": leaf.service(retry=retry(one_layer))}})
        with Hop("127.0.0.30", "c", inner) as a, Hop("127.0.0.31", "c", inner) as a2:
            outer = Policy.from_dict({"services": {"a": {"endpoints": [a.address, a2.address],
                                                         "retry": retry(one_layer)}}})
            caller = mesh(outer)
            r = caller.get("http://a/x")
            assert r.status_code == 503
            hops = a.hits + a2.hits
            if one_layer:
                assert (hops, sum(leaf.hits())) == (1, 3)
                # the hop forwards c's 3 attempts; the caller's own 1 does not lower it
                assert r.headers[RETRIES_SPENT_HEADER] == "3"
            else:
                assert (hops, sum(leaf.hits())) == (3, 9)


# client -> b -> c -> leaf, each service its own process; leaf answers 503, b and c call on
# through the mesh with 3 attempts (breakers and ejection off). Only c, the layer next to
# the failure, retries, within its budget: b and the client see marked answers.
N_REQUESTS = 40
RATE = 20.0  # top-level requests per second


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "shell"), [("asgi", "async"), ("wsgi", "sync"),
                                             ("handler", "sync")])
def test_bottom_service_load_bounded_by_budget_across_real_processes(kind: str,
                                                                     shell: str) -> None:
    leaf = ChainService("leaf", "127.0.0.41")
    c = ChainService(kind, "127.0.0.42", leaf.address)
    b = ChainService(kind, "127.0.0.43", c.address)
    with started(leaf, c, b):  # each process waits on the next only when a request comes
        caller = Caller(shell, Policy.from_dict({"services": {"b": {
            "endpoints": [b.address], "retry": {"attempts": 3},
            "breaker": {"failures": 10_000}, "outlier": {"consecutive_failures": 0}}}}),
            client_kwargs={"timeout": CALL_TIMEOUT_S})
        try:
            start = time.monotonic()
            for i in range(N_REQUESTS):  # paced at RATE, never faster
                pause = start + i / RATE - time.monotonic()
                if pause > 0:
                    time.sleep(pause)  # the scenario: a paced load
                r = caller.get("http://b/x")
                assert r.status_code == 503
                assert int(r.headers[RETRIES_SPENT_HEADER]) >= 1
            elapsed = time.monotonic() - start
        finally:
            caller.close()
        assert (b.hits(), c.hits()) == (N_REQUESTS, N_REQUESTS)  # nobody above c retried
        budget = BudgetPolicy()
        # c's retries: `ratio` of its requests plus the reserve of `min_per_second * ttl`
        # in each ttl window the run touched (at 20/s in the steady state this is
        # 1 + 0.2 + 10/20 = 1.7 leaf requests per top-level request).
        windows = math.ceil(elapsed / BUDGET_TTL_S) + 1
        bound = N_REQUESTS * (1 + budget.ratio) + budget.min_per_second * BUDGET_TTL_S * windows
        leaf_hits = leaf.hits()
        assert N_REQUESTS < leaf_hits <= bound, (leaf_hits, bound, elapsed)


def test_a_malformed_retries_spent_mark_reads_as_absent(mesh) -> None:
    hits: list[int] = []

    async def fail(request: Request) -> Response:
        hits.append(1)
        return Response(status_code=503, headers={RETRIES_SPENT_HEADER: "²"})

    with serve_asgi(Starlette(routes=[Route("/x", fail)]), host="127.0.0.44") as url:
        caller = mesh(Policy.from_dict({"services": {"s": {
            "endpoints": [url.removeprefix("http://")], "retry": retry(True)}}}))
        r = caller.get("http://s/x")
    assert r.status_code == 503 and len(hits) == 3  # retried: the mark is not a count
    assert r.headers[RETRIES_SPENT_HEADER] == "3"


def down_policy() -> Policy:
    """A service whose only endpoint refuses connections (a port just freed)."""
    return Policy.from_dict({"services": {"down": {
        "endpoints": [f"127.0.0.45:{free_port('127.0.0.45')}"], "retry": retry(True)}}})


def test_asgi_answer_is_marked_after_an_outbound_call_failed_its_retries() -> None:
    async def page(request: Request) -> Response:
        async with meshclient.AsyncClient(policy=down_policy()) as client:
            try:
                await client.get("http://down/x")
            except httpx.ConnectError:
                return Response(status_code=502)
        return Response(status_code=200)

    app = meshclient.asgi.MeshMiddleware(Starlette(routes=[Route("/page", page)]))
    with serve_asgi(app, host="127.0.0.46") as url:
        r = httpx.get(url + "/page", timeout=10)
    assert r.status_code == 502 and r.headers[RETRIES_SPENT_HEADER] == "3"


def test_wsgi_answer_is_marked_after_an_outbound_call_failed_its_retries() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with meshclient.Client(policy=down_policy()) as client:
            try:
                client.get("http://down/x")
                status = "200 OK"
            except httpx.ConnectError:
                status = "502 Bad Gateway"
        start_response(status, [("Content-Length", "0")])
        return [b""]

    with serve_wsgi(meshclient.wsgi.MeshMiddleware(app), host="127.0.0.47") as url:
        r = httpx.get(url + "/page", timeout=10)
    assert r.status_code == 502 and r.headers[RETRIES_SPENT_HEADER] == "3"


def test_a_call_made_while_serving_a_retry_is_sent_as_part_of_it(mesh, shell: str) -> None:
    with LoopbackCluster(2, first=48) as below:
        for b in below.backends:
            b.set(status=503)
        caller = mesh(Policy.from_dict({"services": {"s": below.service(retry=retry(True))}}))

        def sync_call(client: httpx.Client) -> httpx.Response:
            with inbound_context(Inbound(attempt=2)):
                return client.get("http://s/x")

        async def async_call(client: httpx.AsyncClient) -> httpx.Response:
            with inbound_context(Inbound(attempt=2)):
                return await client.get("http://s/x")

        r = caller.call(sync_call if shell == "sync" else async_call)
        assert r.status_code == 503 and sum(below.hits()) == 1  # no retry below a retry
        assert r.json()["headers"]["x-mesh-attempt"] == "2"  # nor below the layer below
        assert RETRIES_SPENT_HEADER not in r.headers  # the retrying layer is above
