"""Security and enforcement, one module per job:

- `tls`: mutual TLS from files, reloaded on change (`RotatingContext`), SPIFFE ID checks;
- `credentials`: bearer tokens (`bearer`) and OAuth2 client credentials (the token answer
  parsed in `token`) for outbound requests;
- `trust`: what a policy from a remote source may do (docs/security.md);
- `authz`, `inbound`, `asgi`, `wsgi`: inbound caller identity and authorization;
- `jwt`, `jwks`, `cache_control`: end-user JWT authentication and the JWKS cache;
- `rbac`: Istio-style authorization policies, matched against a `RequestView`;
- `checks`, `checks_run`: programmable checks and how they run (timeout, failure mode);
- `extauthz`, `providers`, `egress`: an HTTP authorization service (`ExtAuthz`), checks by
  name (policy providers, then registered ones), and the outbound check hook of the
  transports;
- `gate`: the inbound pipeline in Istio's order, driven from a thread or a task;
- `limits`, `throttle`, `quota`: token bucket (and keyed buckets), bulkhead, adaptive
  throttling, Redis quotas; `limitkey`: what a keyed limit buckets a request by;
- `inbound_limits`: the rate limit on requests this process serves (429);
- `admission`: the `Limiter` (throttle, rate, bulkhead) of one service or route;
- `outbound`, `routes`, `registry`: the per-service guard, a route's limiter in front of
  it, and the registry the transports ask for both (`admission()`).
"""

from .authz import Authorizer, Caller, Decision
from .credentials import CredentialsError, CredentialsUnavailable
from .inbound import InboundGate
from .tls import RotatingContext, TlsError

__all__ = [
    "Authorizer",
    "Caller",
    "CredentialsError",
    "CredentialsUnavailable",
    "Decision",
    "InboundGate",
    "RotatingContext",
    "TlsError",
]
