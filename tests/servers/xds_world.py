"""An xDS world for behaviour tests: the test ADS server, HTTP backends on distinct
loopback hosts, and a `PolicyStore` following the server through `meshclient.xds`."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from meshclient.policy import Policy, PolicyStore
from meshclient.testing import LoopbackCluster
from meshclient.xds import attach, parse_bootstrap
from tests.servers.ads import AdsServer
from tests.servers.xds_resources import serve_split

HOST = "users.default.svc.cluster.local"
TARGET = f"{HOST}:8080"
URL = f"http://{TARGET}"


class XdsWorld:
    def __init__(self, backends: int = 2, **options: Any) -> None:
        self.server = AdsServer().start()
        self.cluster = LoopbackCluster(backends).start()
        self.options = {"wait_s": 5.0, "backoff_base_s": 0.05, "backoff_max_s": 0.2, **options}
        self.stores: list[PolicyStore] = []

    def store(self, policy: Policy | None = None, **options: Any) -> PolicyStore:
        store = PolicyStore(policy)
        bootstrap = parse_bootstrap(json.dumps(self.server.bootstrap()))
        attach(store, bootstrap, **{**self.options, **options})
        self.stores.append(store)
        return store

    def endpoints(self, *indexes: int, **extra: Any) -> list[dict[str, Any]]:
        return [{"address": self.cluster[i].address, **extra} for i in indexes]

    def split(self, weights: dict[str, int], endpoints: dict[str, list[dict[str, Any]]] | None = None,
              **kwargs: Any) -> None:
        """Serve TARGET -> weighted clusters; by default cluster `c-<i>` is backend i."""
        if endpoints is None:
            endpoints = {name: self.endpoints(int(name.split("-")[1])) for name in weights}
        serve_split(self.server, TARGET, weights, endpoints, **kwargs)

    def close(self) -> None:
        for store in self.stores:
            store.close()
        self.server.stop()
        self.cluster.stop()


def backend_of(response: Any) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["backend"])


def tally(caller: Any, n: int, url: str = URL + "/", **kwargs: Any) -> Counter[str]:
    return Counter(backend_of(caller.get(url, **kwargs)) for _ in range(n))
