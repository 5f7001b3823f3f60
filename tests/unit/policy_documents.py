"""A rich, valid policy document (every section), shared by the hostile-input tests."""

from __future__ import annotations

import copy
from typing import Any

RICH: dict[str, Any] = {
    "version": "2026-12-03.1",
    "defaults": {
        "timeout": {"total": "10s", "per_try": "2s"},
        "retry": {"attempts": 3, "on": ["connect-error", "reset", "503"],
                  "methods": ["GET", "PUT"], "backoff": {"base": "25ms", "max": "250ms"},
                  "budget": {"ratio": 0.2, "min_per_second": 10, "ttl": "10s"},
                  "hedge": {"delay": "50ms", "max_hedges": 1}},
        "balancer": {"kind": "p2c-ewma", "decay": "10s", "default_rtt": "30ms",
                     "panic_threshold": 50, "failure_penalty": 2},
        "breaker": {"failures": 5, "reset": "30s"},
        "outlier": {"consecutive_failures": 5, "base_ejection": "30s", "max_ejection": "300s",
                    "max_ejected_percent": 50},
        "limits": {"rate": 100, "burst": 20, "max_concurrent": 10, "max_wait": "100ms"},
    },
    "services": {
        "users": {
            "endpoints": ["127.0.0.2:8001",
                          {"address": "127.0.0.3:8001", "weight": 2, "zone": "b",
                           "metadata": {"rack": "r1"}}],
            "scheme": "http",
            "health": {"path": "/healthz", "interval": "5s", "timeout": "1s"},
            "tls": {"ca": "/etc/ca.pem", "cert": "/etc/c.pem", "key": "/etc/k.pem",
                    "server_name": "users.internal"},
            "auth": {"bearer": {"token_env": "USERS_TOKEN"}, "header": "authorization"},
            "routes": [
                {"name": "canary",
                 "match": {"method": ["GET"], "path": {"regex": "/v1/users/[0-9]+"},
                           "headers": {"x-canary": {"exact": "1"}},
                           "query": {"debug": {"present": True}}},
                 "to": [{"service": "users", "weight": 90},
                        {"service": "users-v2", "weight": 10}],
                 "hash_on": "x-user",
                 "fault": {"delay": {"percent": 1, "duration": "5ms"},
                           "abort": {"percent": 1, "status": 503}, "header": "x-fault"},
                 "mirror": {"to": "users-v2", "percent": 5},
                 "limits": {"rate": 10}},
                {"match": {"path": {"prefix": "/v1/"}}},
            ],
            "fault": {"abort": {"percent": 0.5, "error": "reset"}},
        },
        "users-v2": {"discovery": {"url": "dns+srv://_http._tcp.users.internal",
                                   "min_ttl": "5s", "nameservers": ["127.0.0.53:53"]}},
        "api.example.com": {
            "endpoints": ["127.0.0.4:8443"], "scheme": "https",
            "auth": {"oauth2": {"token_url": "https://127.0.0.5:9000/token", "client_id": "c",
                                "client_secret_env": "SECRET", "scopes": ["a", "b"]}},
            "breaker": {"failures": 3, "reset": "10s"},
            "retry": {"attempts": 2},
        },
    },
    "authorization": {
        "default": "deny",
        "rules": [{"action": "allow", "callers": ["spiffe://example.org/*"],
                   "methods": ["GET"], "paths": ["/v1/*"], "name": "readers"}],
        "allow_addresses": ["127.0.0.0/8"],
        "deny_addresses": ["127.0.0.9"],
        "tokens": ["ops=env:OPS_TOKEN"],
        "trust_caller_header": "x-caller",
    },
}

RICH_TOML = """
version = "2026-12-03.1"

[defaults.timeout]
total = "10s"
per_try = "2s"

[defaults.retry]
attempts = 3
on = ["connect-error", "reset", "503"]
backoff = { base = "25ms", max = "250ms" }
budget = { ratio = 0.2, min_per_second = 10, ttl = "10s" }

[defaults.limits]
rate = 100
max_wait = "100ms"

[services.users]
endpoints = ["127.0.0.2:8001", { address = "127.0.0.3:8001", weight = 2 }]
health = { path = "/healthz", interval = "5s" }
auth = { bearer = { token_env = "USERS_TOKEN" } }

[[services.users.routes]]
name = "canary"
match = { path = { regex = "/v1/users/[0-9]+" }, headers = { x-canary = { exact = "1" } } }
to = [{ service = "users", weight = 90 }, { service = "users-v2", weight = 10 }]
fault = { abort = { percent = 1, status = 503 } }
mirror = { to = "users-v2", percent = 5 }

[services.users-v2]
discovery = "dns+srv://_http._tcp.users.internal"

[authorization]
default = "deny"
rules = [{ action = "allow", callers = ["*"], paths = ["/v1/*"] }]
"""


def rich() -> dict[str, Any]:
    """A fresh deep copy of `RICH`, safe to mutate."""
    return copy.deepcopy(RICH)
