"""A quota shared by every process that names the same Redis key: a token bucket kept in
Redis and updated by one atomic server-side Lua script (read, refill, take, write in one
step, on the server's clock, so processes never race and their clocks need not agree).

Redis is a dependency only of this feature: `redis` is imported when a policy names a Redis
URL, never otherwise. When Redis is unreachable the caller falls back to its local bucket:
`reserve()` returns `None` ("no answer"), one warning is logged per outage, and Redis is
tried again after `RETRY_S`. Requests never fail because of Redis.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from .. import _events
from .._types import Clock
from ..errors import MeshError

logger = logging.getLogger("meshclient.security")

RETRY_S = 1.0
TIMEOUT_S = 0.25
#: Refused: the wait would exceed max_wait (no token taken).
REFUSED = -1.0

# KEYS[1] bucket; ARGV: rate/s, burst, max_wait_s. Returns the wait in seconds as a string
# ("-1": refused), because Redis truncates Lua numbers to integers in replies.
_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate)
  ts = now
end
local wait = 0
if tokens < 1 then
  wait = (1 - tokens) / rate
  if wait > max_wait then
    return '-1'
  end
end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst / rate + max_wait) * 1000) + 1000)
return tostring(wait)
"""


class RedisQuota:
    """One shared token bucket.

    Usage:
    ```python
    quota = RedisQuota("redis://127.0.0.1:6379/0", "meshclient:quota:users", rate=50, burst=5,
                       clock=CLOCK)
    wait_s = quota.reserve(max_wait_s=1.0)   # None: Redis unreachable, use the local bucket
    ```

    Thread-safe (redis-py's client keeps a connection pool). The call is blocking I/O: the
    async shell runs it in a worker thread.
    """

    def __init__(self, url: str, key: str, rate: float, burst: int, clock: Clock,
                 service: str = "") -> None:
        try:
            import redis  # lazy: only processes that configure a shared quota need it
        except ImportError:
            raise MeshError(f"limits.redis {_redact(url)!r} needs the redis package "
                            f"(pip install 'meshclient[redis]')") from None

        self.url = url
        self.service = service
        self.key = key
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        try:
            self._client: Any = redis.Redis.from_url(
                url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)
        except ValueError as exc:  # a malformed URL (port, query options)
            raise MeshError(f"limits.redis {_redact(url)!r} is not a valid Redis URL: "
                            f"{exc}") from None
        self._script: Any = self._client.register_script(_SCRIPT)
        self._down_until_ns = 0
        self._down = False
        self._lock = threading.Lock()

    def reserve(self, max_wait_s: float = 0.0, suffix: str | None = None) -> float | None:
        """Seconds to wait for a token (0.0: go now), `REFUSED`, or None when Redis did not
        answer (the caller uses its local limit). `suffix`: a keyed limit's key (the
        bucket is `<key>:<suffix>`)."""
        now = self._clock.now_ns()
        if now < self._down_until_ns:
            return None
        key = self.key if suffix is None else f"{self.key}:{suffix}"
        try:
            reply = self._script(keys=[key], args=[self.rate, self.burst, max_wait_s])
        except self._errors as exc:
            self._mark_down(exc)
            return None
        if self._down:
            with self._lock:
                was_down, self._down = self._down, False
            if was_down:
                _events.emit(_events.QUOTA_FALLBACK, self.service, key=self.key, active=False)
                logger.warning("shared quota %s at %s is reachable again; using it",
                               self.key, _redact(self.url))
        wait_s = float(reply)
        return REFUSED if wait_s < 0 else wait_s

    def _mark_down(self, exc: BaseException) -> None:
        with self._lock:
            self._down_until_ns = self._clock.now_ns() + int(RETRY_S * 1e9)
            first, self._down = not self._down, True
        if first:
            _events.emit(_events.QUOTA_FALLBACK, self.service, key=self.key, active=True)
            logger.warning("shared quota %s at %s is unreachable (%s); falling back to the "
                           "local limit", self.key, _redact(self.url), type(exc).__name__)

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        state = "down" if self._down else "up"
        return f"<RedisQuota {self.key} {_redact(self.url)} {self.rate:g}/s {state}>"


def _redact(url: str) -> str:
    """The URL without a password (`redis://:secret@host` -> `redis://***@host`)."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return scheme + sep + rest
