"""A forked child (gunicorn / uWSGI workers, multiprocessing "fork") behaves like a fresh
process: its refresher, discovery and health threads start again on first use, so it picks
up a policy change and a discovery change made after the fork. Real `os.fork()`; the child
reports over a pipe and always leaves with `os._exit` within a bounded time."""

from __future__ import annotations

import asyncio
import json
import os
import select
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import meshclient
from meshclient.policy import PolicyStore
from meshclient.testing import LoopbackCluster
from tests.servers.etcd import EtcdServer
from tests.servers.helpers import reap
from tests.servers.nginx import NginxServer

pytestmark = pytest.mark.slow

CHILD_S = 10.0  # the child gives up (and says so) after this long


def doc(version: str, etcd: EtcdServer, orders: str) -> str:
    return json.dumps({"version": version, "services": {
        "users": {"discovery": {"url": etcd.url("/mesh/users"), "timeout": "500ms"},
                  "health": {"path": "/", "interval": "500ms", "timeout": "500ms"},
                  "timeout": {"total": "2s"}},
        "orders": {"endpoints": [orders], "timeout": {"total": "2s"}}}})


def _threads() -> list[str]:
    return sorted({t.name.split(" ")[0] for t in threading.enumerate()
                   if t.name.startswith("meshclient-") and t.is_alive()})


def _child_sync(store: PolicyStore, client: httpx.Client) -> dict[str, Any]:
    deadline = time.monotonic() + CHILD_S
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        seen = {"orders": client.get("http://orders/").json()["backend"],
                "users": client.get("http://users/").json()["backend"],
                "alive": store.refresher.alive, "threads": _threads(),
                "version": store.current.version}  # read last: the calls restart the refresher
        if (seen["orders"] == "backend-1" and seen["users"] == "backend-2"
                and seen["version"] == "v2"):
            break
        time.sleep(0.05)  # polls until the change shows or the deadline; the parent asserts
    return seen


async def _child_async(store: PolicyStore) -> dict[str, Any]:
    deadline = time.monotonic() + CHILD_S
    seen: dict[str, Any] = {}
    async with httpx.AsyncClient(transport=meshclient.AsyncMeshTransport(store)) as client:
        while time.monotonic() < deadline:
            seen = {"orders": (await client.get("http://orders/")).json()["backend"],
                    "users": (await client.get("http://users/")).json()["backend"],
                    "alive": store.refresher.alive, "threads": _threads(),
                    "version": store.current.version}  # read last, as in `_child_sync`
            if (seen["orders"] == "backend-1" and seen["users"] == "backend-2"
                    and seen["version"] == "v2"):
                break
            await asyncio.sleep(0.05)  # polls until the change shows or the deadline
    return seen


def _fork(child: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run `child()` in a forked child; its answer, read from a pipe within a bound."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read_fd)
            os.write(write_fd, json.dumps(child()).encode())
            code = 0
        except BaseException as exc:  # report, whatever it was
            os.write(write_fd, json.dumps({"error": repr(exc)}).encode())
        finally:
            os._exit(code)
    return {"pid": pid, "read_fd": read_fd, "write_fd": write_fd}


def _collect(forked: dict[str, Any]) -> dict[str, Any]:
    pid, read_fd = forked["pid"], forked["read_fd"]
    os.close(forked["write_fd"])
    data = b""
    deadline = time.monotonic() + CHILD_S + 10
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([read_fd], [], [], 0.2)
            if ready:
                chunk = os.read(read_fd, 65536)
                if not chunk:
                    break
                data += chunk
    finally:
        os.close(read_fd)
        reap(pid, max(0.0, deadline - time.monotonic()))  # killed if still there
    assert data, "the child said nothing"
    return json.loads(data)  # type: ignore[no-any-return]


@pytest.mark.parametrize("shell", ["sync", "async"])
def test_a_forked_child_follows_policy_and_discovery_changes(
        shell: str, nginx_server: NginxServer, etcd_server: EtcdServer,
        cluster: LoopbackCluster) -> None:
    etcd = etcd_server.client()
    etcd.put("/mesh/users/a", json.dumps({"address": cluster[0].address}).encode())
    nginx_server.publish("mesh.json", doc("v1", etcd_server, cluster[0].address))
    store = PolicyStore()
    store.watch(nginx_server.url("mesh.json"), interval_s=0.1, wait=5)
    client = httpx.Client(transport=meshclient.MeshTransport(store))
    try:
        assert client.get("http://users/").json()["backend"] == "backend-0"  # threads running
        assert store.current.version == "v1"
        if shell == "sync":
            forked = _fork(lambda: _child_sync(store, client))
        else:
            forked = _fork(lambda: asyncio.run(_child_async(store)))
        # after the fork, in the parent: a new policy and a new endpoint set
        nginx_server.publish("mesh.json", doc("v2", etcd_server, cluster[1].address))
        etcd.put("/mesh/users/b", json.dumps({"address": cluster[2].address}).encode())
        etcd.delete("/mesh/users/a")
        seen = _collect(forked)
        assert seen == {"version": "v2", "orders": "backend-1", "users": "backend-2",
                        "alive": True, "threads": ["meshclient-control",
                                                   "meshclient-discovery-users",
                                                   "meshclient-health-users"]}, seen
    finally:
        client.close()
        store.close()
        etcd.close()


def test_a_child_leaving_does_not_deregister_its_parent(etcd_server: EtcdServer) -> None:
    from meshclient.discovery import _threads

    registration = meshclient.register("users", "127.0.0.9:80",
                                       registry=etcd_server.url("/mesh"), ttl=30)
    etcd = etcd_server.client()
    try:
        # what interpreter exit runs in a worker that returns normally
        seen = _collect(_fork(lambda: (_threads._close_all(), {"closed": True})[1]))
        assert seen == {"closed": True}
        assert [kv.key for kv in etcd.get_prefix("/mesh/")[1]] == ["/mesh/users/127.0.0.9:80"]
        registration.close()
        assert etcd.get_prefix("/mesh/")[1] == []  # the parent's own close still revokes
    finally:
        registration.close()
        etcd.close()


GUNICORN_APP = '''
import json, os, httpx, meshclient

store = meshclient.PolicyStore()
store.watch(os.environ["CONTROL_URL"], interval_s=0.1, wait=5)  # in the master (--preload)
client = httpx.Client(transport=meshclient.MeshTransport(store))


def app(environ, start_response):
    backend = client.get("http://orders/").json()["backend"]  # the first use restarts
    body = json.dumps({"pid": os.getpid(), "backend": backend,
                       "version": store.current.version}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''


def test_gunicorn_preforked_workers_follow_policy_changes(
        nginx_server: NginxServer, cluster: LoopbackCluster, tmp_path: Any) -> None:
    pytest.importorskip("gunicorn")
    import subprocess
    import sys
    from pathlib import Path

    from tests.servers.helpers import until
    from tests.servers.ports import free_port

    def policy(version: str, i: int) -> str:
        return json.dumps({"version": version, "services": {"orders": {
            "endpoints": [cluster[i].address], "timeout": {"total": "2s"}}}})

    (tmp_path / "meshapp.py").write_text(GUNICORN_APP)
    nginx_server.publish("mesh.json", policy("v1", 0))
    port = free_port("127.0.0.3")
    root = Path(__file__).parents[2]
    env = {**os.environ, "CONTROL_URL": nginx_server.url("mesh.json"),
           "PYTHONPATH": os.pathsep.join([str(root), str(tmp_path)])}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--preload", "--workers", "2",
         "--bind", f"127.0.0.3:{port}", "--log-level", "warning", "meshapp:app"],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    answers: dict[int, dict[str, Any]] = {}

    def ask() -> bool:
        try:
            r = httpx.get(f"http://127.0.0.3:{port}/", timeout=2)
        except httpx.HTTPError:
            return False
        answers[r.json()["pid"]] = r.json()
        return True

    try:
        assert until(ask, 15), "gunicorn did not answer"
        assert until(lambda: ask() and len(answers) == 2, 10), answers  # both workers seen
        assert {a["backend"] for a in answers.values()} == {"backend-0"}
        nginx_server.publish("mesh.json", policy("v2", 1))  # after the fork

        def both_moved() -> bool:
            ask()
            return len(answers) == 2 and all(
                a["backend"] == "backend-1" and a["version"] == "v2" for a in answers.values())

        assert until(both_moved, 10), answers
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        assert server.stderr is not None
        server.stderr.close()


def _local_port(response: httpx.Response) -> int:
    """The client-side port of the connection that carried `response`."""
    stream = response.extensions["network_stream"]
    return int(stream.get_extra_info("client_addr")[1])


@pytest.mark.parametrize("shell", ["sync", "async"])
def test_a_forked_child_does_not_share_its_parents_pooled_connections(shell: str) -> None:
    """Keep-alive connections pooled before the fork belong to the parent: the child's
    first call opens its own (two processes on one socket would mix their bytes)."""
    with LoopbackCluster(1) as cluster:
        policy = cluster.policy("users")
        if shell == "sync":
            client = httpx.Client(transport=meshclient.MeshTransport(policy))
            parent_port = _local_port(client.get("http://users/"))
            assert _local_port(client.get("http://users/")) == parent_port  # kept alive

            def child() -> dict[str, Any]:
                return {"port": _local_port(client.get("http://users/"))}
        else:
            aclient = httpx.AsyncClient(transport=meshclient.AsyncMeshTransport(policy))

            async def parent_call() -> int:
                return _local_port(await aclient.get("http://users/"))

            loop = asyncio.new_event_loop()
            parent_port = loop.run_until_complete(parent_call())
            assert loop.run_until_complete(parent_call()) == parent_port

            def child() -> dict[str, Any]:
                return {"port": asyncio.new_event_loop().run_until_complete(parent_call())}
        seen = _collect(_fork(child))
        assert "error" not in seen, seen
        assert seen["port"] != parent_port  # a connection of its own
        if shell == "sync":
            assert _local_port(client.get("http://users/")) == parent_port  # the parent's is intact
            client.close()
        else:
            assert loop.run_until_complete(parent_call()) == parent_port
            loop.run_until_complete(aclient.aclose())
            loop.close()
