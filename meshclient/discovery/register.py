"""`meshclient.register`: announce this process in etcd, under a lease kept alive.

```python
with meshclient.register("users", "10.0.0.7:8080", registry="etcd://etcd:2379/mesh", ttl=10):
    serve()                      # the key is removed when the block ends

registration = meshclient.register("users", "10.0.0.7:8080", registry="etcd://etcd:2379/mesh")
...
registration.close()             # or let the process die: the lease expires after `ttl`
```

The key is `<prefix>/<service>/<address>`, its value the endpoint as JSON (`address`,
`weight`, `zone`, `metadata`), so clients discover the service with
`discovery = "etcd://etcd:2379/mesh/<service>/"`. A thread (`meshclient-register-<service>`,
stopped and joined by `close()`) refreshes the lease every `ttl / 3`; when the
lease is lost (etcd was unreachable for longer than `ttl`, so etcd expired it) a new lease is
granted and the key written again. Failures are retried with backoff and logged once per
streak. `close()` revokes the lease, which deletes the key at once; a registration still open
when the interpreter exits normally is closed then (`_threads.py`).

A registration belongs to the process that made it: a forked child (a gunicorn worker)
inherits the object but neither keeps the lease alive nor revokes it, so a worker exiting
does not deregister its parent.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from types import TracebackType

from .. import _fork
from .._addresses import parse_url
from .._etcd import EtcdClient, EtcdError
from ..errors import MeshError
from ._threads import start_thread
from .endpoint import split_address

logger = logging.getLogger("meshclient.discovery")


class RegistrationError(MeshError):
    """The first registration failed (etcd unreachable or refused); nothing was announced."""


class Registration:
    """A live registration: a context manager, or call `close()`. See `register`."""

    def __init__(self, service: str, address: str, registry: str, *, ttl: int = 10,
                 weight: int = 1, zone: str | None = None,
                 metadata: Mapping[str, str] | None = None) -> None:
        split_address(address)  # ValueError names a bad address
        target = parse_url(registry)
        if target.kind != "etcd":
            raise ValueError(f"registry must be an etcd://host:port/prefix URL: {registry!r}")
        if not 2 <= int(ttl) <= 3600:
            raise ValueError(f"ttl must be between 2 and 3600 seconds: {ttl!r}")
        self.service = service
        self.address = address
        self.ttl = int(ttl)
        self.key = f"{target.path}{service}/{address}"
        value = {"address": address, "weight": weight, "zone": zone,
                 "metadata": dict(metadata or {})}
        self.value = json.dumps({k: v for k, v in value.items() if v is not None}).encode()
        self._client = EtcdClient(f"http://{target.server}", timeout_s=min(2.0, self.ttl / 3))
        self._stop = threading.Event()
        self.lease = 0
        self.renewals = 0
        try:
            self._announce()
        except EtcdError as exc:
            self._client.close()
            raise RegistrationError(f"cannot register {service} at {registry}: {exc}") from exc
        self._thread = start_thread(self, self._run, f"meshclient-register-{service}")
        self._inherited = False
        _fork.track(self)

    def _after_fork_in_child(self) -> None:
        self._inherited = True  # the parent's lease: not ours to keep alive or revoke

    def _resume_after_fork(self) -> None:
        pass

    def _announce(self) -> None:
        self.lease = self._client.grant(self.ttl)
        self._client.put(self.key, self.value, lease=self.lease)

    def _run(self) -> None:
        failures = 0
        while not self._stop.wait(self.ttl / 3 if failures == 0 else min(1.0, self.ttl / 3)):
            try:
                if self._client.keepalive(self.lease) <= 0:
                    logger.warning("lease of %s at %s expired; registering again",
                                   self.service, self.key)
                    self._announce()
                self.renewals += 1
                if failures:
                    logger.info("registration of %s recovered after %d failures",
                                self.service, failures)
                failures = 0
            except EtcdError as exc:
                failures += 1
                if failures == 1:
                    logger.warning("cannot keep registration of %s alive: %s; retrying",
                                   self.service, exc)

    def close(self) -> None:
        """Stop the keepalive and revoke the lease (the key disappears now)."""
        if self._stop.is_set() or self._inherited:
            return
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(10)
        try:
            self._client.revoke(self.lease)
        except EtcdError as exc:  # etcd away: the lease expires by itself after ttl
            logger.warning("could not revoke the lease of %s (it expires in %ds): %s",
                           self.service, self.ttl, exc)
        finally:
            self._client.close()

    def __enter__(self) -> Registration:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._stop.is_set() else f"lease={self.lease}"
        return f"<Registration {self.key} {state}>"


def register(service: str, address: str, registry: str, *, ttl: int = 10, weight: int = 1,
             zone: str | None = None, metadata: Mapping[str, str] | None = None
             ) -> Registration:
    """Announce `address` ("host:port") as an endpoint of `service` in `registry`
    (`etcd://host:port/prefix`), under a lease of `ttl` seconds kept alive in the
    background. Returns a `Registration`: use it as a context manager or call `close()`.
    Raises `ValueError` for bad arguments, `RegistrationError` when etcd cannot be reached."""
    return Registration(service, address, registry, ttl=ttl, weight=weight, zone=zone,
                        metadata=metadata)
