"""One-layer retries across a real hop: client -> a (meshclient inside) -> c (all 503)."""

from __future__ import annotations

from typing import Any

import pytest

from meshclient.context import RETRIES_SPENT_HEADER
from meshclient.policy import Policy
from meshclient.testing import LoopbackCluster
from tests.servers.hop import Hop


def retry(one_layer: bool) -> dict[str, Any]:
    return {"attempts": 3, "one_layer": one_layer, "backoff": {"base": "1ms", "max": "2ms"}}


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
