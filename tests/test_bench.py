"""The benchmark machinery runs end to end (tiny batches: this checks it works, not speed)."""

from __future__ import annotations

import httpx
import pytest

from benchmarks import __main__ as runner
from benchmarks._common import interleave, median_ratio, report, table
from meshclient._bench.measure import run_overhead
from meshclient._bench.upstream import BODY_SIZE, FastServer
from meshclient.cli import main


def test_fast_server_keeps_alive_and_pipelines() -> None:
    with FastServer() as server, httpx.Client() as client:
        for _ in range(3):
            r = client.get(server.url + "/anything")
            assert r.status_code == 200 and len(r.content) == BODY_SIZE
    assert server._process is None  # stopped and reaped


@pytest.mark.slow
def test_run_overhead_tiny() -> None:
    rows = run_overhead(requests=32, rounds=2, warmup=16, concurrency=(1, 4), chunk=16)
    assert [(r.shell, r.concurrency) for r in rows] == [
        ("sync", 1), ("sync", 4), ("async", 1), ("async", 4)]
    for row in rows:
        assert row.bare.requests == row.mesh.requests == [32, 32]
        assert row.ratio() > 0 and all(c > 0 for c in row.mesh.cpu_us())
    text = report(rows)
    assert "CPU ratio" in text and "target" in text


@pytest.mark.slow
def test_cli_bench(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--requests", "32", "--rounds", "1", "--shell", "sync"]) == 0
    out = capsys.readouterr().out
    assert "sync" in out and "worst CPU ratio" in out and "mesh itself adds" in out
    assert "a short run" in out  # says how far a short run moves
    assert "target (CPU per request through the mesh <= 1.10 x bare httpx's)" in out
    assert main(["bench", "--requests", "1"]) == 2


def test_common_helpers() -> None:
    counter = iter(range(1000))
    results = interleave(3, {"a": lambda: next(counter) * 0 + 10, "b": lambda: 10})
    assert results["a"].requests == [10, 10, 10] and len(results["b"].cpu) == 3
    assert median_ratio([2.0, 4.0, 9.0], [1.0, 2.0, 3.0]) == 2.0
    assert "x" in table([(1, 2.5)], ("x", "y"))


def test_runner_skips_missing_and_rejects_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    assert runner.exists("overhead")
    assert not runner.exists("no_such_benchmark")
    assert runner.main(["no_such_benchmark"]) == 1
    assert "no such benchmark" in capsys.readouterr().err


def test_added_cpu_in_memory() -> None:
    from meshclient._bench.measure import added_cpu_us, format_added

    bare, mesh = added_cpu_us(requests=50, rounds=2)
    assert bare > 0 and mesh > 0
    assert "the mesh itself adds" in format_added(bare, mesh)


def test_every_known_benchmark_takes_quick() -> None:
    """`python -m benchmarks --quick` passes the flag to each module: each must accept it
    (parsing only; the runs themselves are the benchmarks' business)."""
    import importlib
    import inspect

    for name in runner.KNOWN:
        module = importlib.import_module(f"benchmarks.{name}")
        source = inspect.getsource(module)
        assert "--quick" in source or "base_parser" in source, name


@pytest.mark.slow
def test_runner_runs_quick_benchmarks(capsys: pytest.CaptureFixture[str]) -> None:
    assert runner.main(["discovery_warm", "security_overhead", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "discovery_warm: exit 0" in out and "security_overhead: exit 0" in out


@pytest.mark.slow
def test_sidecar_quick_tiny(capsys: pytest.CaptureFixture[str]) -> None:
    """The sidecar benchmark end to end at a tiny size (HAProxy and nginx when installed)."""
    from benchmarks import sidecar

    assert sidecar.main(["--quick", "--requests", "32", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "bare-spread" in out and "mesh" in out and "load average" in out
    assert "mesh/spread throughput" in out
