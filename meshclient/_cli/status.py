"""`meshclient status [--admin host:port] [--json]`: what a running process's mesh sees.

Reads the admin endpoint of a process started with `MESHCLIENT_ADMIN=host:port` and prints,
per service, each endpoint's latency estimate, in-flight count, breaker state and ejection,
its connection pool (open connections, requests waiting for one), the retry budget
balance, and the policy version. Exit code 1 when the endpoint cannot be
reached. With `MESHCLIENT_ADMIN_TOKEN` set, it is sent as a bearer token.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import httpx

from ..discovery.endpoint import split_address
from ..errors import MeshError
from ..policy import settings_from_env, trust_from_env

DEFAULT_ADMIN = "127.0.0.1:9990"

#: Columns: (heading, keys tried in order in an endpoint's snapshot).
COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("endpoint", ("endpoint", "address")),
    ("zone", ("zone",)),
    ("latency_ms", ("estimate_ms", "latency_ms", "ewma_ms")),
    ("in_flight", ("in_flight", "pending")),
    ("breaker", ("breaker", "breaker_state")),
    ("ejected", ("ejected",)),
    ("health", ("health",)),
    ("requests", ("requests",)),
    ("connections", ("connections",)),
    ("waiting", ("waiting",)),
    ("failures", ("failures",)),
)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("status", help="show the live mesh state of a running process")
    p.add_argument("--admin", metavar="HOST:PORT", default=None,
                   help=f"admin endpoint (default: $MESHCLIENT_ADMIN or {DEFAULT_ADMIN})")
    p.add_argument("--json", action="store_true", help="print the raw JSON document")
    p.set_defaults(run=run)


def admin_address(arg: str | None) -> tuple[str, int]:
    if arg:
        return split_address(arg)
    return settings_from_env().admin or split_address(DEFAULT_ADMIN)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, dict):
        return ",".join(f"{k}={_cell(v)}" for k, v in value.items())
    return str(value)


def render_xds(xds: dict[str, Any]) -> list[str]:
    """The xDS section: server, connection, each resource type's version and last ACK/NACK."""
    lines = [f"  xds {xds.get('server')}  {xds.get('connection')}  node {xds.get('node') or '-'}"
             f"  listeners {','.join(xds.get('listeners', [])) or '-'}"]
    if xds.get("absent"):
        lines.append(f"    not on the server (pass through): {','.join(xds['absent'])}")
    if xds.get("last_connection_error"):
        lines.append(f"    last connection error: {xds['last_connection_error']}")
    for kind, info in sorted(xds.get("resources", {}).items()):
        line = (f"    {kind}  version {info.get('version') or '-'}  resources "
                f"{info.get('resources')}  acks {info.get('acks')}  nacks {info.get('nacks')}")
        if info.get("last_error"):
            line += f"  last NACK: {info['last_error']}"
        lines.append(line)
    return lines


def render(doc: dict[str, Any]) -> str:
    """The status document as text: one table per service."""
    lines = [f"pid {doc.get('pid')}"]
    for reg in doc.get("registries", []):
        version = reg.get("policy") or "(unversioned)"
        lines.append(f"policy {version} (generation {reg.get('generation')})")
        if reg.get("xds"):
            lines.extend(render_xds(reg["xds"]))
        for name, svc in sorted(reg.get("services", {}).items()):
            extra = {k: v for k, v in svc.items() if k not in ("service", "endpoints")}
            budget = extra.pop("budget_balance", extra.pop("budget", None))
            head = f"  {name}"
            if budget is not None:
                head += f"  budget {_cell(budget)}"
            if extra:
                head += "  " + " ".join(f"{k}={_cell(v)}" for k, v in sorted(extra.items()))
            lines.append(head)
            endpoints = svc.get("endpoints", [])
            cols = [(h, keys) for h, keys in COLUMNS
                    if any(k in ep for ep in endpoints for k in keys)]
            rows = [[h for h, _ in cols]]
            for ep in endpoints:
                rows.append([_cell(next((ep[k] for k in keys if k in ep), None))
                             for _, keys in cols])
            widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
            for row in rows:
                cells = (c.ljust(w) for c, w in zip(row, widths, strict=True))
                lines.append(("    " + "  ".join(cells)).rstrip())
            if not endpoints:
                lines.append("    (no endpoints)")
    if not doc.get("registries"):
        lines.append("(no mesh transports in this process yet)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        host, port = admin_address(args.admin)
    except ValueError as exc:
        print(f"--admin {exc}", file=sys.stderr)
        return 2
    except MeshError as exc:  # an invalid MESHCLIENT_ADMIN
        print(str(exc), file=sys.stderr)
        return 2
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}/status"
    token = trust_from_env().admin_token  # MESHCLIENT_ADMIN_TOKEN, when the endpoint wants one
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.get(url, timeout=5.0, headers=headers)
        response.raise_for_status()
        doc = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        print(f"cannot read {url}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(doc, indent=2) if args.json else render(doc))
    return 0
