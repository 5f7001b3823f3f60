"""Wrap an existing httpx client with the mesh.

    python examples/wrap_client.py

Starts three real HTTP backends on loopback (127.0.0.2-4) with `meshclient.testing`, so it
runs anywhere with no set-up. Then it:

1. takes a client configured the usual way (base URL, headers, timeout, event hooks);
2. gives it a `MeshTransport`, so `http://users/...` is balanced over the three backends
   with the logical `Host` kept, while other hosts pass straight through. The default
   balancer is P2C peak-EWMA: each call goes to the cheaper of two endpoints picked at
   random, by a latency estimate, so one-at-a-time calls to idle local backends may all
   land on the one that answered fastest; round robin is one policy line away;
3. does the same with `httpx.AsyncClient` and `AsyncMeshTransport`, where concurrent
   calls spread over the endpoints (each one's load counts in its cost).
"""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

import meshclient
from meshclient.testing import LoopbackCluster


def log_request(request: httpx.Request) -> None:
    print(f"  -> {request.method} {request.url}")


def main() -> None:
    with LoopbackCluster(3, name="users") as cluster:
        policy = meshclient.Policy.from_dict({
            "version": "example-1",
            "services": {"users": {"endpoints": cluster.addresses}},
        })

        # An existing client's settings stay as they were; only the transport changes.
        client = httpx.Client(
            base_url="http://users",
            headers={"User-Agent": "wrap-client-example"},
            timeout=httpx.Timeout(5.0),
            event_hooks={"request": [log_request]},
            transport=meshclient.MeshTransport(policy),
        )
        with client:
            seen: Counter[str] = Counter()
            for user in range(6):
                r = client.get(f"/v1/users/{user}")
                r.raise_for_status()
                body = r.json()
                assert body["headers"]["Host"] == "users"  # the logical name reaches the server
                seen[body["backend"]] += 1
            print("P2C peak-EWMA (the default) over the endpoints:", dict(sorted(seen.items())))

            # A host that is not a service passes straight through, untouched.
            direct = client.get(f"{cluster[0].url}/direct")
            print("passthrough reached", direct.json()["backend"], "as", direct.url.host)

        round_robin = meshclient.Policy.from_dict({"services": {"users": {
            "endpoints": cluster.addresses, "balancer": {"kind": "round-robin"}}}})
        with meshclient.Client(policy=round_robin) as rr:
            turns = Counter(rr.get(f"http://users/v1/users/{i}").json()["backend"]
                            for i in range(6))
        print("round robin (balancer.kind = round-robin):", dict(sorted(turns.items())))

        asyncio.run(async_main(policy))


async def async_main(policy: meshclient.Policy) -> None:
    transport = meshclient.AsyncMeshTransport(policy)
    async with httpx.AsyncClient(transport=transport) as client:
        responses = await asyncio.gather(*(client.get(f"http://users/v1/users/{i}")
                                           for i in range(9)))
    backends = Counter(r.json()["backend"] for r in responses)
    print("async, 9 concurrent calls (P2C peak-EWMA):", dict(sorted(backends.items())))


if __name__ == "__main__":
    main()
