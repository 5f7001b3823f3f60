"""`PolicyStore`: atomic snapshot swaps, subscribers, and many threads at once."""

from __future__ import annotations

import functools
import threading

import pytest

from meshclient import Policy, PolicyStore
from meshclient.policy._store import reset_default_store
from tests.servers.helpers import run_threads


def _policy(version: str) -> Policy:
    return Policy.from_dict({"version": version, "services": {
        "users": {"endpoints": [f"127.0.0.1:{1000 + int(version)}"]}}})


def test_replace_swaps_and_counts_generations() -> None:
    store = PolicyStore(_policy("1"))
    assert store.generation == 1 and store.current.version == "1"
    old = store.replace(_policy("2"))
    assert old.version == "1"
    assert store.snapshot == (2, store.current) and store.current.version == "2"
    assert "generation=2" in repr(store) and "'2'" in repr(store)


def test_current_is_read_only() -> None:
    store = PolicyStore(_policy("1"))
    with pytest.raises(AttributeError, match="read-only: use replace"):
        store.current = _policy("2")  # type: ignore[misc]
    assert store.current.version == "1" and store.generation == 1


def test_replace_rejects_non_policies() -> None:
    store = PolicyStore()
    with pytest.raises(TypeError, match="needs a Policy, not dict"):
        store.replace({"version": "x"})  # type: ignore[arg-type]
    assert store.generation == 1  # the last good state is kept


def test_subscribers_see_old_and_new_and_can_leave() -> None:
    store = PolicyStore(_policy("1"))
    seen: list[tuple[str, str]] = []
    unsubscribe = store.subscribe(lambda old, new: seen.append((old.version, new.version)))

    def broken(old: Policy, new: Policy) -> None:
        raise RuntimeError("subscriber bug")

    store.subscribe(broken)
    store.replace(_policy("2"))  # a failing subscriber does not stop the swap or the others
    unsubscribe()
    store.replace(_policy("3"))
    assert seen == [("1", "2")]
    assert store.current.version == "3"


def test_attachment_is_created_once() -> None:
    store = PolicyStore()
    made: list[object] = []

    def factory() -> object:
        made.append(object())
        return made[-1]

    run_threads([functools.partial(store.attachment, "k", factory)] * 16, 5)
    assert len(made) == 1 and store.attachment("k", factory) is made[0]


def test_threads_hammering_current_and_replace() -> None:
    """Readers always see a complete snapshot (version and endpoints agree); generations
    only go up; every replace is counted."""
    store = PolicyStore(_policy("0"))
    writes_per_writer, writers, readers = 200, 4, 8
    problems: list[str] = []
    notified: list[int] = []
    lock = threading.Lock()

    def on_swap(old: Policy, new: Policy) -> None:
        with lock:
            notified.append(int(new.version))

    store.subscribe(on_swap)
    policies = [_policy(str(i)) for i in range(1, 50)]
    stop = threading.Event()

    def writer(k: int) -> None:
        for i in range(writes_per_writer):
            store.replace(policies[(k * 7 + i) % len(policies)])

    def reader() -> None:
        last_generation = 0
        for _ in range(20_000):
            if stop.is_set():
                break
            generation, policy = store.snapshot
            port = int(policy.resolved["users"].endpoints[0].address.rsplit(":", 1)[1])
            if port != 1000 + int(policy.version):
                problems.append(f"torn snapshot {policy.version} {port}")
            if generation < last_generation:
                problems.append(f"generation went back {last_generation} -> {generation}")
            last_generation = generation
            _ = store.current.version

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(writers)]
    threads += [threading.Thread(target=reader) for _ in range(readers)]
    for t in threads:
        t.start()
    for t in threads[:writers]:
        t.join(30)
    stop.set()
    for t in threads[writers:]:
        t.join(30)
    assert not problems, problems[:5]
    assert store.generation == 1 + writers * writes_per_writer
    assert len(notified) == writers * writes_per_writer


def test_reset_default_store() -> None:
    from meshclient import default_store

    first = default_store()
    reset_default_store()
    assert default_store() is not first
