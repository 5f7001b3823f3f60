"""A route regex that would backtrack catastrophically in `re`: with RE2 installed it is
matched in linear time through both shells; without it the policy refuses it, so it can
never reach a request."""

from __future__ import annotations

import time
from typing import Any

import pytest

from meshclient import Policy, PolicyError
from meshclient.policy._regex import ENGINE
from meshclient.testing import LoopbackCluster

NESTED = "/a(a+)+"  # in `re`, a 40-character miss would take minutes


def policy(cluster: LoopbackCluster) -> dict[str, Any]:
    return {"services": {
        "users": {"endpoints": [cluster[0].address], "retry": {"attempts": 1},
                  "routes": [{"match": {"path": {"regex": NESTED}},
                              "to": [{"service": "users-v2", "weight": 1}]}]},
        "users-v2": {"endpoints": [cluster[1].address], "retry": {"attempts": 1}},
    }}


@pytest.mark.skipif(ENGINE != "re2", reason="google-re2 (module re2) is not installed")
def test_a_nested_quantifier_is_matched_in_linear_time(mesh, cluster: LoopbackCluster) -> None:
    caller = mesh(Policy.from_dict(policy(cluster)))
    started = time.monotonic()
    missed = caller.get("/".join(["http://users", "a" * 40 + "!"]))
    assert time.monotonic() - started < 5.0  # generous: `re` alone would take minutes
    hit = caller.get("http://users/" + "a" * 40)
    assert missed.status_code == hit.status_code == 200
    assert cluster.hits()[:2] == [1, 1]  # the miss stayed on users, the hit went to users-v2


@pytest.mark.skipif(ENGINE == "re2", reason="with RE2 installed the pattern is allowed")
def test_without_re2_the_policy_refuses_it(cluster: LoopbackCluster) -> None:
    with pytest.raises(PolicyError, match=r"^services\.users\.routes\[0\]\.match\.path\.regex "
                                          r"repeats a group that contains a quantifier"):
        Policy.from_dict(policy(cluster))
