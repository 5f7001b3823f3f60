"""Envoy's route `retry_policy` -> a meshclient `retry` section and a per-try timeout.

`retry_on` names map onto meshclient's retry conditions:

| Envoy `retry_on` | meshclient `retry.on` |
|---|---|
| `5xx` | `5xx` |
| `gateway-error` | `gateway-error` (502, 503, 504) |
| `reset`, `refused-stream` | `reset` |
| `connect-failure` | `connect-error` |
| `retriable-status-codes` | each of `retriable_status_codes` |
| `retriable-4xx` | `409` |

Other names (gRPC status names, `retriable-headers`, `envoy-ratelimited`,
`http3-post-connect-failure`…) are ignored, as gRPC ignores the names it does not
support; a policy left with no condition retries nothing. `num_retries` (default 1) plus
the first attempt is `retry.attempts`, capped at meshclient's 10. Retries stay under
meshclient's retry budget and the one-layer rule, which xDS does not express.
"""

from __future__ import annotations

from typing import Any

from envoy.config.route.v3 import route_components_pb2 as rc

from ..policy import RetryPolicy
from ._translate_common import Where, check, seconds

RETRY_ON = {
    "5xx": ("5xx",),
    "gateway-error": ("gateway-error",),
    "reset": ("reset",),
    "refused-stream": ("reset",),
    "connect-failure": ("connect-error",),
    "retriable-4xx": ("409",),
}
MAX_ATTEMPTS = 10


def retry_document(where: Where, p: rc.RetryPolicy) -> tuple[dict[str, Any], float | None]:
    """The `RetryPolicy` document of `p` and its per-try timeout (None: unset)."""
    on: list[str] = []
    for word in (w.strip() for w in p.retry_on.split(",")):
        if word == "retriable-status-codes":
            for i, code in enumerate(p.retriable_status_codes):
                if not 100 <= code <= 599:
                    raise where.at("retriable_status_codes").at(i).error(
                        f"must be an HTTP status between 100 and 599: {code}")
                on.append(str(code))
        on.extend(RETRY_ON.get(word, ()))
    retries = p.num_retries.value if p.HasField("num_retries") else 1
    out: dict[str, Any] = {
        "on": list(dict.fromkeys(on)),
        "attempts": min(MAX_ATTEMPTS, retries + 1) if on else 1,
    }
    if p.HasField("retry_back_off"):
        here = where.at("retry_back_off")
        base = seconds(here.at("base_interval"), p.retry_back_off.base_interval)
        if base <= 0:
            raise here.at("base_interval").error("must be greater than 0")
        ceiling = base * 10  # Envoy's default max_interval
        if p.retry_back_off.HasField("max_interval"):
            ceiling = seconds(here.at("max_interval"), p.retry_back_off.max_interval)
            if ceiling < base:
                raise here.at("max_interval").error(
                    f"must not be less than base_interval ({base:g}s): {ceiling:g}s")
        out["backoff"] = {"base": base, "max": ceiling}
    check(where, RetryPolicy, out)
    per_try = None
    if p.HasField("per_try_timeout"):
        per_try = seconds(where.at("per_try_timeout"), p.per_try_timeout) or None
    return out, per_try
