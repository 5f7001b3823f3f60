"""The policy cache (`MESHCLIENT_POLICY_CACHE`) while xDS is on: the composed policy
document, and beside it (`<cache>.xds`) the listeners it was asked for, so a cold start
serves the xDS services at once and subscribes to the same listeners again."""

from __future__ import annotations

import json
import logging
from typing import Any

from ..policy import Policy
from ..policy.cache import read_cache, write_cache

logger = logging.getLogger("meshclient.xds")
MAX_LISTENERS_BYTES = 1 << 20


def write(path: str, document: dict[str, Any], listeners: dict[str, str]) -> None:
    """Write both files atomically (each on its own); an OSError is logged, never raised."""
    write_cache(path, json.dumps(document).encode())
    write_cache(path + ".xds", json.dumps(sorted(listeners.items())).encode())


def read(path: str) -> tuple[Policy, dict[str, str]] | None:
    """The cached policy and listeners (none when `<cache>.xds` is unreadable), or None."""
    cached = read_cache(path)
    if cached is None:
        return None
    try:
        with open(path + ".xds", "rb") as file:
            pairs = json.loads(file.read(MAX_LISTENERS_BYTES))
        listeners = {str(name): str(host) for name, host in pairs}
    except (OSError, ValueError, TypeError) as exc:
        logger.warning("xDS listener cache %s.xds not read: %s", path, exc)
        listeners = {}
    return cached[0], listeners
