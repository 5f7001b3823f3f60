"""`LoopbackCluster`: N backends on distinct loopback hosts (127.0.0.2, 127.0.0.3, …)."""

from __future__ import annotations

from typing import Any

from ..policy import Policy
from .backend import Backend


class LoopbackCluster:
    """Backends `127.0.0.{first + i}` for i < n, each a distinct host on an ephemeral port.

    Usage:
    ```python
    with LoopbackCluster(3) as cluster:
        policy = cluster.policy("users")
        cluster.stop(0); cluster.set(1, latency_ms=200); cluster.start(0)
    ```
    """

    def __init__(self, n: int = 3, *, first: int = 2, name: str = "backend") -> None:
        self.backends = [Backend(f"127.0.0.{first + i}", name=f"{name}-{i}") for i in range(n)]

    def __len__(self) -> int:
        return len(self.backends)

    def __getitem__(self, i: int) -> Backend:
        return self.backends[i]

    @property
    def addresses(self) -> list[str]:
        return [b.address for b in self.backends]

    def service(self, **extra: Any) -> dict[str, Any]:
        """A `services.<name>` entry for this cluster."""
        return {"endpoints": self.addresses, **extra}

    def policy(self, name: str = "users", **extra: Any) -> Policy:
        """A policy with one service, `name`, whose endpoints are these backends."""
        return Policy.from_dict({"services": {name: self.service(**extra)}})

    def start(self, i: int | None = None) -> LoopbackCluster:
        for b in self.backends if i is None else [self.backends[i]]:
            b.start()
        return self

    def stop(self, i: int | None = None) -> None:
        for b in self.backends if i is None else [self.backends[i]]:
            b.stop()

    def set(self, i: int, **knobs: Any) -> None:
        self.backends[i].set(**knobs)

    def heal(self) -> None:
        for b in self.backends:
            b.heal()

    def hits(self) -> list[int]:
        return [b.hits for b in self.backends]

    def reset_stats(self) -> None:
        for b in self.backends:
            b.reset_stats()

    def __enter__(self) -> LoopbackCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<LoopbackCluster {self.backends!r}>"
