"""Helpers for behaviour tests: wait for a condition, run work in threads at once, see
which backends answer, run requests concurrently or under an inbound context through either
shell, and a redis-server on a free port."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx

from meshclient.context import Inbound, inbound_context
from tests.servers.caller import Caller
from tests.servers.redis_server import RedisServer


def until(predicate: Callable[[], bool], timeout_s: float, *, every_s: float = 0.02) -> bool:
    """Poll `predicate` every `every_s` until it holds or `timeout_s` passes; its last value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every_s)
    return predicate()


def run_workers(script: str, *args: str, count: int = 2,
                timeout_s: float = 60.0) -> list[list[str]]:
    """Run `count` copies of `python -c script *args` side by side, from the repository root
    (so `tests` imports); each one's printed words. A worker that fails fails the test,
    with its stderr."""
    root = Path(__file__).resolve().parents[2]
    procs = [subprocess.Popen([sys.executable, "-c", script, *args], cwd=root,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(count)]
    outputs = [p.communicate(timeout=timeout_s) for p in procs]
    for (_out, err), p in zip(outputs, procs, strict=True):
        assert p.returncode == 0, err
    return [out.split() for out, _ in outputs]


def reap(pid: int, timeout_s: float) -> int | None:
    """Wait (bounded) for forked child `pid` to exit; its exit code, or None when it had to
    be killed at the deadline."""
    status: list[int] = []

    def exited() -> bool:
        done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            status.append(code)
        return bool(done)

    if until(exited, timeout_s):
        return os.waitstatus_to_exitcode(status[0])
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def wait_until(predicate: Callable[[], object], timeout_s: float = 10.0, *,
               every_s: float = 0.01, what: str = "") -> float:
    """Poll `predicate` every `every_s` until it holds; the seconds that took. Fails the test
    (AssertionError naming `what`, or the predicate) if it still does not hold after
    `timeout_s`. The timeout is generous on purpose: it bounds a broken test, it is not the
    behaviour under test, so a loaded machine only makes the wait longer, never failing."""
    start = time.monotonic()
    deadline = start + timeout_s
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout_s}s: {what or predicate}")
        time.sleep(every_s)


def run_threads(targets: Iterable[Callable[[], object]], join_s: float) -> None:
    """One thread per target, all started before any is joined; each join waits `join_s`."""
    threads = [threading.Thread(target=target) for target in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(join_s)


def backends_of(caller: Any, n: int) -> set[str]:
    """The backend names that answer `n` GETs of http://users/."""
    return {caller.get("http://users/").json()["backend"] for _ in range(n)}


def concurrent(caller: Caller, n: int, method: str, url: str,
               **kwargs: Any) -> list[httpx.Response | Exception]:
    """`n` requests at once; each result is a response (body read) or the exception."""
    if caller.kind == "sync":
        import concurrent.futures

        def one() -> httpx.Response | Exception:
            try:
                return caller.client.request(method, url, **kwargs)  # type: ignore[no-any-return]
            except Exception as exc:
                return exc

        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            return list(pool.map(lambda _: one(), range(n)))

    async def run(client: httpx.AsyncClient) -> list[httpx.Response | Exception]:
        out: list[httpx.Response | Exception] = []

        async def one() -> None:
            try:
                out.append(await client.request(method, url, **kwargs))
            except Exception as exc:
                out.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(n):
                tg.start_soon(one)
        return out

    return caller.call(run)  # type: ignore[no-any-return]


def request_inbound(caller: Caller, value: Inbound, method: str, url: str,
                    **kwargs: Any) -> httpx.Response:
    """One request made while handling `value` (context.inbound set in the caller's task)."""
    if caller.kind == "sync":
        with inbound_context(value):
            return caller.client.request(method, url, **kwargs)  # type: ignore[no-any-return]

    async def run(client: httpx.AsyncClient) -> httpx.Response:
        with inbound_context(value):
            return await client.request(method, url, **kwargs)

    return caller.call(run)  # type: ignore[no-any-return]


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway redis-server on a free loopback port; yields its URL."""
    with RedisServer() as server:  # skips the test when redis-server is not installed
        yield server.url
