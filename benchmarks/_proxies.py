"""HAProxy (`leastconn`) and nginx (`least_conn`) in front of loopback backends, named as
the balancing benchmarks print them: a thin layer over `_sidecars.Sidecar` (generated
configs, free loopback ports, started and stopped by the benchmark, never left running)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ._sidecars import Sidecar

#: The proxies as the benchmarks name them, and the sidecar each is.
KINDS = {"haproxy-leastconn": "haproxy", "nginx-least_conn": "nginx"}


@contextmanager
def proxy(kind: str, backends: list[str]) -> Iterator[tuple[str, int]]:
    """Run `kind` (one of `KINDS`) over `backends`; yields (address, pid)."""
    if kind not in KINDS:
        raise ValueError(f"proxy kind must be one of {tuple(KINDS)}: {kind!r}")
    with Sidecar(KINDS[kind], backends) as sidecar:
        yield f"127.0.0.1:{sidecar.port}", sidecar.pid
