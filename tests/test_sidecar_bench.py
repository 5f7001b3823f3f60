"""The sidecar benchmark's harness: every client starts a concurrency level alike (a fresh
client, one prefilled connection per caller), the client runs on CPUs of its own, the busy
neighbour stops when told and by itself, and bad options are named. Real loopback
backends; tiny sizes (this checks the harness, not speed)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks import _load, sidecar
from meshclient import MeshTransport
from meshclient._bench.upstream import FastServer


@pytest.fixture(scope="module")
def backends() -> Any:
    servers = [FastServer(f"127.0.0.{i + 2}") for i in range(3)]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()


def _connections(client: Any) -> int:
    transport = client._transport
    pools = getattr(transport, "pools", None)
    if pools is None:
        return len(transport._pool.connections)
    return sum(len(t._pool.connections) for key in pools.pools for t in pools.transports(key))


@pytest.mark.parametrize("c", [1, 8])
def test_sync_prefill_opens_one_connection_per_caller_in_every_client(
        backends: list[FastServer], c: int) -> None:
    variants = sidecar._variants("sync", backends, {})
    assert [v.name for v in variants] == ["bare-one", "bare-spread", "mesh"]
    for variant in variants:
        with variant.make() as client:
            _load.sync_prefill(client, variant.urls, c)
            assert _connections(client) == c, variant.name
            latencies = _load.sync_run(client, variant.urls, c, sidecar.per_sample(16, c))
            assert len(latencies) == sidecar.per_sample(16, c)


@pytest.mark.parametrize("c", [1, 8])
def test_async_prefill_opens_one_connection_per_caller_in_every_client(
        backends: list[FastServer], c: int) -> None:
    async def main() -> None:
        for variant in sidecar._variants("async", backends, {}):
            async with variant.make() as client:
                await _load.async_prefill(client, variant.urls, c)
                assert _connections(client) == c, variant.name
                latencies = await _load.async_run(client, variant.urls, c, 24)
                assert len(latencies) == 24

    asyncio.run(main())


def test_each_level_gets_fresh_clients(backends: list[FastServer]) -> None:
    """A level's clients never carry a previous level's connections (the harness used to
    warm once at the highest level and measure every lower one on that pool)."""
    made: list[Any] = []
    variants = sidecar._variants("sync", backends[:3], {})[1:]  # bare-spread, mesh
    for variant in variants:
        maker = variant.make
        variant.make = lambda maker=maker: made.append(maker()) or made[-1]  # type: ignore[method-assign]
    for c in (4, 1):
        got = sidecar._level("sync", variants, c, 8, rounds=2)
        assert [len(s) for s in got.values()] == [2, 2]
    assert len(made) == 4 and len({id(m) for m in made}) == 4
    assert all(m.is_closed for m in made)
    assert [type(m._transport) for m in made[1::2]] == [MeshTransport, MeshTransport]


@given(st.integers(1, 10_000), st.integers(1, 512))
def test_per_sample_is_a_multiple_of_the_callers_and_enough(n: int, c: int) -> None:
    got = sidecar.per_sample(n, c)
    assert got % c == 0 and got >= n and got >= 4 * c and got < max(n, 4 * c) + c


@pytest.mark.parametrize("argv, named", [
    (["--levels", "0,16"], "--levels"), (["--levels", "x"], "--levels"),
    (["--shells", "threads"], "--shells"), (["--busy", "-1"], "--busy"),
    (["--rounds", "0"], "--rounds"),
])
def test_bad_options_are_named(argv: list[str], named: str,
                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        sidecar.main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert named in err and argv[1] in err


@given(st.text(max_size=20))
def test_levels_parse_or_name_the_value(text: str) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    try:
        values = sidecar._numbers(parser, "levels", text)
    except SystemExit:
        return
    assert values and all(v >= 1 for v in values)
    assert values == tuple(int(p) for p in text.split(","))


def test_neighbour_burns_cpu_and_stops() -> None:
    with _load.Neighbour(1) as neighbour:
        (process,) = neighbour._processes
        assert process.poll() is None
    assert process.returncode is not None  # terminated and reaped on exit


def test_neighbour_ends_by_itself_at_its_limit() -> None:
    with _load.Neighbour(1, limit=0.2) as neighbour:
        (process,) = neighbour._processes
        assert process.wait(30) == 0  # its own wall-clock bound, not the exit's terminate


def test_neighbour_count_is_checked() -> None:
    with pytest.raises(ValueError, match="-2"):
        _load.Neighbour(-2)
    with _load.Neighbour(0) as none:
        assert none._processes == []


needs_two_cpus = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="CPU placement needs sched_setaffinity and two CPUs")


def _threads_cpus(pid: int) -> list[set[int]]:
    return [os.sched_getaffinity(int(t.name)) for t in Path(f"/proc/{pid}/task").iterdir()]


@needs_two_cpus
def test_placement_gives_the_client_cpus_of_its_own_and_restores_them(
        backends: list[FastServer]) -> None:
    before = os.sched_getaffinity(0)
    with _load.Placement([b.pid for b in backends]) as placement:
        assert placement.client and placement.rest
        assert not placement.client & placement.rest
        assert placement.client | placement.rest == before
        assert os.sched_getaffinity(0) == placement.client
        for backend in backends:  # every thread of every backend
            assert set(map(frozenset, _threads_cpus(backend.pid))) == {
                frozenset(placement.rest)}
        assert f"client on CPU {min(placement.client)}" in placement.describe()
    assert os.sched_getaffinity(0) == before
    for backend in backends:
        _load._pin(backend.pid, before)


@needs_two_cpus
def test_placement_disabled_moves_nothing(backends: list[FastServer]) -> None:
    before = os.sched_getaffinity(0)
    theirs = os.sched_getaffinity(backends[0].pid)
    with _load.Placement([backends[0].pid], enabled=False) as placement:
        assert os.sched_getaffinity(0) == before
        assert os.sched_getaffinity(backends[0].pid) == theirs
        assert placement.describe() == "CPUs shared by client, backends and sidecars"


def test_queued_seconds_counts_up() -> None:
    first = _load.queued_seconds()
    assert 0.0 <= first <= _load.queued_seconds()


def test_samples_report_the_clients_run_queue_wait(backends: list[FastServer]) -> None:
    variants = sidecar._variants("sync", backends, {})[1:2]  # bare-spread
    got = sidecar._level("sync", variants, 2, 8, rounds=1)
    (sample,) = got["bare-spread"]
    assert sample["queued_us"] >= 0.0
    assert " queued " in sidecar.report({("sync", 3, 2, "bare-spread"): [sample]})


def test_tiny_run_covers_every_variant(capsys: pytest.CaptureFixture[str]) -> None:
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    assert sidecar.main(["--levels", "2", "--requests", "8", "--rounds", "1",
                         "--shells", "async"]) == 0
    if before is not None:
        assert os.sched_getaffinity(0) == before  # the run gives the CPUs back
    out = capsys.readouterr().out
    rows = [parts for parts in map(str.split, out.splitlines())
            if parts[:1] == ["async"] and parts[1].isdigit()]  # table rows, not verdicts
    assert {(r[1], r[3]) for r in rows} == {
        ("3", "bare-one"), ("3", "bare-spread"), ("3", "mesh"), ("10", "bare-spread"),
        ("10", "mesh"), *(("3", k) for k in ("haproxy", "nginx")
                          if sidecar.Sidecar.available(k))}
    assert "no neighbour" in out
