"""The applier publishes a verdict's details before its count: a reader that polls
`stats` (a test, a status page) and then reads `last_errors` or the store never sees a
count whose errors or policy are not there yet."""

from __future__ import annotations

import json
from typing import Any

from meshclient.control.refresh import RefreshStats
from meshclient.policy import PolicyStore
from meshclient.policy.apply import Applier


class _Watching(RefreshStats):
    """Records what a reader would see at the moment each verdict is counted."""

    __slots__ = ("applier", "seen")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("rejected", "applied") and value:
            applier: Applier = self.applier
            self.seen.append((name, applier.last_errors, applier.store.current.version))
        super().__setattr__(name, value)


def test_a_counted_verdict_is_readable_in_full() -> None:
    store = PolicyStore()
    applier = Applier(store, "test")
    stats = _Watching()
    stats.applier, stats.seen = applier, []
    applier.stats = stats
    good = {"version": "v1", "services": {"users": {"endpoints": ["127.0.0.2:80"]}}}
    assert applier.apply(json.dumps(good).encode())
    assert not applier.apply(b"{not json")
    bad = {"version": "v2", "services": {"users": {"retry": {"attempts": 99}}}}
    assert not applier.apply(json.dumps(bad).encode())
    (applied, first, second) = stats.seen
    assert applied == ("applied", (), "v1")
    assert first[0] == "rejected" and "invalid JSON" in first[1][0] and first[2] == "v1"
    assert second[0] == "rejected" and "attempts" in second[1][0] and second[2] == "v1"
