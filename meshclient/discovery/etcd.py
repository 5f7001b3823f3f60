"""`etcd://host:port/prefix`: every key under the prefix is one endpoint, followed by watch.

A key's value is an endpoint as JSON (`"host:port"` or `{"address", "weight", "zone",
"priority", "metadata"}`; `meshclient.register` writes the object form). A value that does
not parse (junk, JSON nested too deep to decode, bytes that are not UTF-8, a wrong shape) is
skipped: logged once per key and revision, counted (`skipped_total`), listed in `skipped`
(key -> reason, shown in the status), and the other keys still count. It never stops the
watch, so later updates keep applying.

`watch()` reads the whole prefix (one full snapshot), then watches from the next revision,
publishing a full snapshot after every change, so a key put or a lease expiry reaches the
balancer within one watch round-trip. etcd unreachable: `DiscoveryError`, the cache backs
off and calls `watch()` again, which re-reads the prefix, so nothing missed while it was
down is lost. A compacted watch returns; the next call starts over the same way.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from .._etcd import EtcdClient, EtcdError, KeyValue
from .endpoint import DiscoveryError, Endpoint, Resolution
from .static import endpoint_from_json

logger = logging.getLogger("meshclient.discovery")

WATCH_IDLE_S = 0.5
#: How much of a bad value a log line or the status quotes.
EXCERPT_CHARS = 120


def _excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS - 1] + "…"


class EtcdResolver:
    def __init__(self, url: str, server: str, prefix: str, *, timeout_s: float = 2.0) -> None:
        self.source = url
        self.prefix = prefix
        self._server = server
        self._timeout_s = timeout_s
        self._client = EtcdClient(f"http://{server}", timeout_s=timeout_s)
        #: keys whose current value was skipped -> why (short; read by status pages)
        self.skipped: dict[str, str] = {}
        #: values skipped so far, each (key, revision) counted once
        self.skipped_total = 0
        self._logged: set[tuple[str, int]] = set()

    def _endpoint(self, kv: KeyValue) -> Endpoint | None:
        where = f"etcd key {kv.key} (revision {kv.mod_revision})"
        try:
            value = json.loads(kv.value)
        except UnicodeDecodeError:
            return self._skip(kv, f"{where} is not UTF-8")
        except RecursionError:
            return self._skip(kv, f"{where} is JSON nested too deeply to decode")
        except ValueError:
            value = kv.value.decode("utf-8", "replace")
        try:
            endpoint = endpoint_from_json(value, self.source, where)
        except DiscoveryError as exc:
            return self._skip(kv, str(exc))
        except Exception as exc:  # e.g. a repr too deep to print: still only this key
            return self._skip(kv, f"{where} is not an endpoint ({type(exc).__name__})")
        self.skipped.pop(kv.key, None)
        return endpoint

    def _skip(self, kv: KeyValue, reason: str) -> Endpoint | None:
        """Record and log (once per key and revision) a value that is not an endpoint."""
        reason = _excerpt(reason)
        self.skipped[kv.key] = reason
        mark = (kv.key, kv.mod_revision)
        if mark not in self._logged:
            self.skipped_total += 1
            if len(self._logged) > 10_000:  # bounded memory under a flood of bad writes
                self._logged.clear()
            self._logged.add(mark)
            logger.warning("ignoring %s", reason)
        return None

    def _snapshot(self, endpoints: dict[str, Endpoint]) -> Resolution:
        ordered = tuple(endpoints[key] for key in sorted(endpoints))
        return Resolution(ordered, self.source, None, exists=bool(ordered))

    def _read(self) -> tuple[int, dict[str, Endpoint]]:
        revision, kvs = self._client.get_prefix(self.prefix)
        self.skipped = {}
        current = {}
        for kv in kvs:
            endpoint = self._endpoint(kv)
            if endpoint is not None:
                current[kv.key] = endpoint
        return revision, current

    def resolve(self) -> Resolution:
        try:
            return self._snapshot(self._read()[1])
        except EtcdError as exc:
            raise DiscoveryError(str(exc)) from exc

    def watch(self, publish: Callable[[Resolution], None],
              should_stop: Callable[[], bool]) -> None:
        try:
            revision, current = self._read()
            publish(self._snapshot(current))
            for batch in self._client.watch(self.prefix, prefix=True,
                                            start_revision=revision + 1,
                                            should_stop=should_stop, idle_s=WATCH_IDLE_S):
                if batch.compacted:
                    return  # the caller starts over with a full read
                for key in batch.deletes:
                    current.pop(key, None)
                    self.skipped.pop(key, None)
                for kv in batch.puts:
                    endpoint = self._endpoint(kv)
                    if endpoint is None:
                        current.pop(kv.key, None)
                    else:
                        current[kv.key] = endpoint
                publish(self._snapshot(current))
        except EtcdError as exc:
            raise DiscoveryError(str(exc)) from exc

    def reconnect(self) -> None:
        """A new client (a forked child must not share its parent's pooled connections)."""
        self._client = EtcdClient(f"http://{self._server}", timeout_s=self._timeout_s)

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"<EtcdResolver {self.source}>"
