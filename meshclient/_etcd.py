"""A small etcd v3 client over its JSON gateway (plain HTTP through httpx, no new dependency).

Shared by discovery (watch a prefix of endpoints), registration (a key under a lease kept
alive) and control (watch one policy key). Blocking calls only: every user runs it from a
background thread, never on a request's path.

Why not the gRPC client: it would add grpcio (a large compiled dependency) for four calls;
etcd serves the same API as JSON at `/v3/...`, with keys and values base64-encoded and
64-bit integers written as strings.

Watches are re-armed every `idle_s` seconds of silence (from the last seen revision, so no
event is lost), which keeps `should_stop` prompt without closing sockets across threads.
A watch whose start revision was compacted yields `WatchBatch(compacted=True)`: the caller
re-reads the whole range and watches again from the new revision.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from .errors import MeshError

__all__ = ["EtcdClient", "EtcdError", "KeyValue", "WatchBatch", "parse_etcd_url", "prefix_end"]


class EtcdError(MeshError):
    """etcd could not be reached or refused a call; the message names the call and the cause."""


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: int
    lease: int = 0


@dataclass(frozen=True, slots=True)
class WatchBatch:
    """Events of one revision: `puts` (new values) and `deletes` (keys removed)."""

    revision: int
    puts: tuple[KeyValue, ...] = ()
    deletes: tuple[str, ...] = ()
    compacted: bool = False


def parse_etcd_url(url: str) -> tuple[str, str]:
    """`etcd://host:port/some/key` -> (`http://host:port`, `/some/key`)."""
    parts = urlsplit(url)
    if parts.scheme != "etcd" or not parts.hostname or parts.port is None:
        raise ValueError(f"must be etcd://host:port/key-or-prefix: {url!r}")
    return f"http://{parts.netloc}", parts.path or "/"


def prefix_end(prefix: str) -> str:
    """The `range_end` that selects every key starting with `prefix` (etcd's rule)."""
    raw = bytearray(prefix.encode())
    while raw and raw[-1] == 0xFF:
        raw.pop()
    if not raw:
        return "\0"
    raw[-1] += 1
    return raw.decode("latin-1")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("latin-1" if "\x00" in text else "utf-8")).decode()


def _kv(raw: dict[str, object]) -> KeyValue:
    return KeyValue(
        key=base64.b64decode(str(raw.get("key", ""))).decode("utf-8", "replace"),
        value=base64.b64decode(str(raw.get("value", ""))),
        mod_revision=int(str(raw.get("mod_revision", 0))),
        lease=int(str(raw.get("lease", 0))),
    )


class EtcdClient:
    """Blocking etcd v3 calls. Thread-safe (one pooled `httpx.Client`).

    **Parameters:** `base_url` (`http://host:port`), `timeout_s` (per unary call).

    Usage:
    ```python
    etcd = EtcdClient("http://127.0.0.1:2379")
    lease = etcd.grant(10); etcd.put("/svc/users/a", b"{...}", lease=lease)
    revision, kvs = etcd.get_prefix("/svc/users/")
    ```
    """

    def __init__(self, base_url: str, *, timeout_s: float = 2.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout_s, trust_env=False)

    def _call(self, path: str, body: dict[str, object]) -> dict[str, object]:
        try:
            response = self._client.post(path, json=body)
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise EtcdError(f"etcd {path} at {self.base_url} failed: {exc!r}") from exc
        if not isinstance(data, dict):
            raise EtcdError(f"etcd {path} answered {data!r}")
        if response.status_code >= 400 or "error" in data:
            raise EtcdError(f"etcd {path} refused: {data.get('message') or data.get('error')}")
        return data

    @staticmethod
    def _revision(data: dict[str, object]) -> int:
        header = data.get("header")
        return int(str(header.get("revision", 0))) if isinstance(header, dict) else 0

    def get_prefix(self, prefix: str) -> tuple[int, list[KeyValue]]:
        data = self._call("/v3/kv/range", {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix))})
        kvs = data.get("kvs") or []
        assert isinstance(kvs, list)
        return self._revision(data), [_kv(kv) for kv in kvs]

    def get(self, key: str) -> tuple[int, KeyValue | None]:
        data = self._call("/v3/kv/range", {"key": _b64(key)})
        kvs = data.get("kvs") or []
        assert isinstance(kvs, list)
        return self._revision(data), (_kv(kvs[0]) if kvs else None)

    def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        body: dict[str, object] = {"key": _b64(key), "value": base64.b64encode(value).decode()}
        if lease:
            body["lease"] = str(lease)
        return self._revision(self._call("/v3/kv/put", body))

    def delete(self, key: str) -> int:
        return self._revision(self._call("/v3/kv/deleterange", {"key": _b64(key)}))

    def grant(self, ttl_s: int) -> int:
        data = self._call("/v3/lease/grant", {"TTL": str(int(ttl_s))})
        return int(str(data["ID"]))

    def keepalive(self, lease: int) -> int:
        """Refresh a lease; returns its TTL in seconds (0 when the lease no longer exists)."""
        data = self._call("/v3/lease/keepalive", {"ID": str(lease)})
        result = data.get("result")
        return int(str(result.get("TTL", 0))) if isinstance(result, dict) else 0

    def revoke(self, lease: int) -> None:
        self._call("/v3/lease/revoke", {"ID": str(lease)})

    def watch(self, key: str, *, prefix: bool = False, start_revision: int,
              should_stop: Callable[[], bool], idle_s: float = 1.0) -> Iterator[WatchBatch]:
        """Yield each change to `key` (or every key under it) from `start_revision` on.

        Returns when `should_stop()` is true (checked at least every `idle_s`); raises
        `EtcdError` when etcd cannot be reached (the caller backs off and calls again).
        """
        next_revision = start_revision
        request: dict[str, object] = {"key": _b64(key)}
        if prefix:
            request["range_end"] = _b64(prefix_end(key))
        timeout = httpx.Timeout(self._client.timeout.connect or 2.0, read=idle_s)
        while not should_stop():
            body = {"create_request": {**request, "start_revision": str(next_revision)}}
            try:
                with self._client.stream("POST", "/v3/watch", json=body, timeout=timeout) as r:
                    for line in r.iter_lines():
                        batch = self._watch_line(line)
                        if batch is not None:
                            if not batch.compacted:
                                next_revision = batch.revision + 1
                            yield batch
                            if batch.compacted:
                                return
                        if should_stop():
                            return
            except httpx.ReadTimeout:
                continue  # quiet for idle_s: re-arm from next_revision
            except httpx.HTTPError as exc:
                raise EtcdError(f"etcd watch at {self.base_url} failed: {exc!r}") from exc

    @staticmethod
    def _watch_line(line: str) -> WatchBatch | None:
        if not line.strip():
            return None
        try:
            result = json.loads(line).get("result") or {}
        except (ValueError, AttributeError):
            return None
        if result.get("compact_revision"):
            return WatchBatch(revision=int(result["compact_revision"]), compacted=True)
        events = result.get("events") or []
        if not events:
            return None
        puts, deletes, revision = [], [], 0
        for event in events:
            kv = _kv(event.get("kv") or {})
            revision = max(revision, kv.mod_revision)
            if event.get("type") == "DELETE":
                deletes.append(kv.key)
            else:
                puts.append(kv)
        return WatchBatch(revision=revision, puts=tuple(puts), deletes=tuple(deletes))

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"<EtcdClient {self.base_url}>"
