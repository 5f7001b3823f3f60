"""The inbound rate limit: requests this process serves, per `inbound_limits` (a rate, a
burst, optionally `key` and a shared Redis quota), as Envoy's local rate limit (and its
global one, with `redis`). A refused request is answered 429 with `Retry-After` (the
seconds until the bucket has a token again, at least 1) without running the handler.

```python
limits = InboundLimits(store)                     # the policy's `inbound_limits`, live
retry_after = limits.admit(headers=..., address=..., principal=..., route="/x")
if retry_after is not None: ...                   # answer 429, Retry-After: retry_after
```

With a Redis quota, admission asks Redis (bounded by the quota's 0.25 s timeout; Redis
unreachable: the local bucket decides), on the thread serving the request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .. import _events
from .._clock import CLOCK
from .._types import Clock
from ..policy import LimitsPolicy, Policy, PolicyStore, default_store
from .limitkey import Identity, key_value
from .limits import KeyedBuckets, TokenBucket
from .quota import REFUSED, RedisQuota

#: The shared quota's key of inbound limits (`redis_key` overrides it).
DEFAULT_KEY = "meshclient:quota:inbound"


class _Built:
    """The live state of one `inbound_limits` section."""

    def __init__(self, limits: LimitsPolicy, clock: Clock) -> None:
        assert limits.rate is not None  # the policy refuses inbound_limits without a rate
        self.limits = limits
        self.key = limits.parsed_key
        burst = limits.burst or max(1, math.ceil(limits.rate))
        self.bucket = TokenBucket(limits.rate, burst, clock) if self.key is None else None
        self.keyed = (KeyedBuckets(limits.rate, burst, limits.max_keys, clock)
                      if self.key is not None else None)
        self.quota = (RedisQuota(limits.redis, limits.redis_key or DEFAULT_KEY, limits.rate,
                                 burst, clock, "inbound") if limits.redis else None)


class InboundLimits:
    """The inbound rate limit of a policy source (a `Policy`, a `PolicyStore`, None for
    the process's store; anything else, such as a bare `AuthorizationPolicy`: no limit).
    Rebuilt when the section changes. Thread- and task-safe."""

    def __init__(self, policy: Any = None, clock: Clock = CLOCK) -> None:
        self._clock = clock
        self._store: PolicyStore | None = (
            policy if isinstance(policy, PolicyStore)
            else PolicyStore(policy) if isinstance(policy, Policy)
            else default_store() if policy is None else None)
        self._built: _Built | None = None

    def _current(self) -> _Built | None:
        if self._store is None:
            return None
        section = self._store.current.inbound_limits
        built = self._built
        if section is None:
            return None
        if built is None or built.limits is not section:
            old, built = built, _Built(section, self._clock)
            self._built = built
            if old is not None and old.quota is not None:
                old.quota.close()
        return built

    def admit(self, *, headers: Mapping[str, str], address: str | None,
              principal: str | None, route: str | None,
              claims: Mapping[str, Any] | None = None) -> int | None:
        """None: admitted (a token taken). Else the `Retry-After` seconds of a 429."""
        built = self._current()
        if built is None:
            return None
        bucket, suffix = built.bucket, None
        if built.keyed is not None and built.key is not None:
            suffix = key_value(built.key, headers=headers, route=route, address=address,
                               who=Identity(principal, claims or {}))
            if suffix is None:
                return None  # no value for the key: not limited (as Envoy)
            bucket = built.keyed.bucket(suffix)
        assert bucket is not None
        rate = bucket.rate
        if built.quota is not None:
            reply = built.quota.reserve(0.0, suffix)
            if reply is not None:
                return _refused(built, "quota", 1.0 / rate) if reply == REFUSED else None
        if bucket.reserve(0.0) is not None:
            return None
        return _refused(built, "rate", (1.0 - bucket.tokens) / rate)


def _refused(built: _Built, reason: str, wait_s: float) -> int:
    _events.emit(_events.RATE_LIMITED, "inbound", reason=reason)
    return max(1, math.ceil(wait_s))
