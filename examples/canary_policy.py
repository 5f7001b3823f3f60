"""A canary rollout driven by a policy file: 0% -> 5% -> 25% -> 50% -> 100% of `users`
traffic to `users-v2`, one file edit at a time, with the split measured at each step.

    python examples/canary_policy.py

Each step rewrites `mesh.json` (as a deploy pipeline or an operator would), loads it with
`Policy.load` and swaps it in with `PolicyStore.replace`: every client sharing the store
follows at once, no restart. `users` (2 endpoints) and `users-v2` (1 endpoint) are real
loopback backends; the split is counted from the `X-Backend` header of each answer.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import meshclient
from meshclient.testing import LoopbackCluster

STEPS = (0, 5, 25, 50, 100)
REQUESTS_PER_STEP = 200


def policy_document(v1: LoopbackCluster, v2: LoopbackCluster, canary: int) -> dict[str, Any]:
    """`users` routes `canary`% of its traffic to `users-v2` (a route with no `match`
    matches every request; a destination naming the service itself means its own
    endpoints)."""
    doc: dict[str, Any] = {
        "version": f"canary-{canary}",
        "services": {"users": {"endpoints": v1.addresses},
                     "users-v2": {"endpoints": v2.addresses}},
    }
    if canary:
        split = [{"service": s, "weight": w}
                 for s, w in (("users", 100 - canary), ("users-v2", canary)) if w]
        doc["services"]["users"]["routes"] = [{"to": split}]
    return doc


def main() -> int:
    with LoopbackCluster(2, first=2, name="users") as v1, \
            LoopbackCluster(1, first=4, name="users-v2") as v2, \
            tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mesh.json"
        path.write_text(json.dumps(policy_document(v1, v2, 0), indent=2))
        store = meshclient.PolicyStore(meshclient.Policy.load(str(path)))
        with meshclient.Client(policy=store, timeout=5.0) as client:
            for canary in STEPS:
                path.write_text(json.dumps(policy_document(v1, v2, canary), indent=2))
                try:
                    store.replace(meshclient.Policy.load(str(path)))
                except meshclient.PolicyError as exc:
                    print(f"step {canary:3d}%: the policy file was rejected, so the last good "
                          f"policy {store.current.version!r} stays in force:\n  {exc.errors[0]}"
                          "\nrouting (services.<name>.routes) is not available in this build; "
                          "rollout stopped")
                    return 0
                seen: Counter[str] = Counter()
                for i in range(REQUESTS_PER_STEP):
                    r = client.get(f"http://users/users/{i}")
                    seen["users-v2" if r.headers.get("x-backend", "").startswith("users-v2")
                         else "users"] += 1
                share = seen["users-v2"] / REQUESTS_PER_STEP * 100
                print(f"step {canary:3d}%: policy {store.current.version!r}: users-v2 answered "
                      f"{seen['users-v2']}/{REQUESTS_PER_STEP} ({share:.0f}%), users "
                      f"{seen['users']}")
    print("done: the rollout was driven by policy file edits alone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
