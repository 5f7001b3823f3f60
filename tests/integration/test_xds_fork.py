"""A forked worker (gunicorn, uWSGI) of a process following an xDS server opens its own
stream on first use and follows pushes made after the fork. Real `os.fork()`, in a fresh
interpreter: the forking process holds only meshclient's xDS channel, as a pre-fork
server's master does (gRPC does not support forking a process that also serves gRPC, as
this test process does with its ADS server). The child always leaves with `os._exit`
within a bounded time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("grpc")
pytest.importorskip("envoy.service.discovery.v3.ads_pb2_grpc")

from tests.servers.xds_world import XdsWorld

SCRIPT = textwrap.dedent("""
    import json, os, sys, time
    import httpx, meshclient
    from meshclient.xds import attach, parse_bootstrap
    from tests.servers.helpers import until
    from tests.servers.xds_world import URL, backend_of

    store = meshclient.PolicyStore()
    attach(store, parse_bootstrap(sys.argv[1]), wait_s=5.0, backoff_base_s=0.05,
           backoff_max_s=0.2)
    client = httpx.Client(transport=meshclient.MeshTransport(store))
    print("parent", backend_of(client.get(URL + "/")), flush=True)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            seen = {}

            def pushed():
                first = not seen
                seen.update(backend=backend_of(client.get(URL + "/")),
                            connection=store.xds.connection)
                if first:
                    print("child-ready", flush=True)
                return seen["backend"] == "backend-1"

            until(pushed, 10, every_s=0.05)  # until the push shows, or the deadline
            print("child", json.dumps(seen), flush=True)
            code = 0
        finally:
            os._exit(code)
    os.waitpid(pid, 0)
""")



def test_a_forked_child_opens_its_own_stream_and_follows_pushes(world: XdsWorld) -> None:
    world.split({"c-0": 100, "c-1": 0})
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path.cwd()), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, json.dumps(world.server.bootstrap())],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().split() == ["parent", "backend-0"]
        opened = world.server.streams_opened
        assert proc.stdout.readline().strip() == "child-ready"
        # the child's own stream (the parent's is opened already)
        assert world.server.wait_for(lambda: world.server.streams_opened > opened)
        world.split({"c-0": 0, "c-1": 100})
        line = proc.stdout.readline()
        assert line.startswith("child "), (line, proc.stderr.read() if proc.stderr else "")
        assert json.loads(line[6:]) == {"backend": "backend-1", "connection": "connected"}
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
