"""`file:///path/endpoints.json`: a JSON list of endpoints, re-read when the file changes.

The file is checked every `POLL_S` (its size, mtime and inode; a rename over it counts), so
a change shows up within that time without a TTL. A file that is missing, unreadable or not
a valid list is a lookup failure: the last good endpoints stay (stale on error). An empty
list is an empty answer (the grace period applies). Write files atomically (write a
temporary file, then rename) so a half-written file is never read.

Error text names the file, the position and what was expected, never the file's contents
(a discovery URL may come from a remote policy and point at any readable file; the error
reaches logs and the admin endpoint's /status).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from typing import Any

from .endpoint import DiscoveryError, Endpoint, Resolution
from .static import endpoint_from_json

POLL_S = 0.2
MAX_BYTES = 1 << 20
_VALUE = re.compile(r"[\[{'(]|: ")  # where a quoted value starts in an endpoint error
_KINDS = {dict: "object", list: "list", str: "string", bool: "boolean", int: "number",
          float: "number", type(None): "null"}


def _kind(value: Any) -> str:
    return _KINDS.get(type(value), "value")


class FileResolver:
    def __init__(self, url: str, path: str) -> None:
        self.source = url
        self.path = path

    def _signature(self) -> tuple[int, int, int]:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise DiscoveryError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def resolve(self) -> Resolution:
        try:
            with open(self.path, "rb") as f:
                raw = f.read(MAX_BYTES + 1)
        except OSError as exc:
            raise DiscoveryError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        if len(raw) > MAX_BYTES:
            raise DiscoveryError(f"{self.path} is larger than {MAX_BYTES} bytes")
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DiscoveryError(f"{self.path} is not valid JSON (line {exc.lineno} column "
                                 f"{exc.colno})") from None
        except (ValueError, RecursionError):
            raise DiscoveryError(f"{self.path} is not valid UTF-8 JSON") from None
        if isinstance(data, dict) and "endpoints" in data:
            data = data["endpoints"]
        if not isinstance(data, list):
            raise DiscoveryError(f"{self.path} must hold a list of endpoints (or an object "
                                 f"with \"endpoints\"), not a JSON {_kind(data)}")
        endpoints = tuple(self._endpoint(item, f"{self.path}[{i}]")
                          for i, item in enumerate(data))
        return Resolution(endpoints, self.source, None, exists=bool(endpoints))

    def _endpoint(self, item: Any, where: str) -> Endpoint:
        try:
            return endpoint_from_json(item, self.source, where)
        except DiscoveryError as exc:
            # the reason without the value: "<where> <reason>: <value>" -> "<reason>", cut
            # before anything quoted or listed (a key name is the file's content too)
            reason = _VALUE.split(str(exc)[len(where):], 1)[0].strip()
            raise DiscoveryError(f"{where} is not a valid endpoint: {reason} (a JSON "
                                 f"{_kind(item)})") from None

    def watch(self, publish: Callable[[Resolution], None],
              should_stop: Callable[[], bool]) -> None:
        seen: tuple[int, int, int] | None = None
        while not should_stop():
            signature = self._signature()
            if signature != seen:
                publish(self.resolve())
                seen = signature
            time.sleep(POLL_S)

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"<FileResolver {self.path}>"
