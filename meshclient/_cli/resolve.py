"""`meshclient resolve SERVICE [--policy FILE]`: look a service's endpoints up once, now,
and print each with its source, weight, priority, zone and TTL. Exit 0 with endpoints,
1 when there are none or the registry failed, 2 for a bad policy or an unknown service."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..discovery import ScheduleConfig
from ..discovery.build import build_resolver
from ..discovery.endpoint import DiscoveryError, Resolution
from ..discovery.static import endpoints_from_specs
from ..errors import PolicyError
from ..policy import Policy, load_policy_file


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("resolve", help="look up a service's endpoints and print them")
    p.add_argument("service", help="a service named in the policy")
    p.add_argument("--policy", help="a JSON or TOML policy file (default: the environment's "
                   "policy, MESHCLIENT_POLICY)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


def _lookup(policy: Policy, name: str) -> Resolution:
    service = policy.resolved[name]
    if service.discovery is None:
        return Resolution(endpoints_from_specs(service.endpoints), "static")
    resolver = build_resolver(service.discovery)
    try:
        return resolver.resolve()
    finally:
        resolver.close()


def run(args: argparse.Namespace) -> int:
    try:
        policy = load_policy_file(args.policy) if args.policy else Policy.from_env()
    except PolicyError as exc:
        print(f"{args.policy or 'environment'}: {len(exc.errors)} error(s)", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return 2
    if args.service not in policy.resolved:
        known = ", ".join(sorted(policy.resolved)) or "none"
        print(f"unknown service {args.service!r} (the policy names: {known})", file=sys.stderr)
        return 2
    try:
        resolution = _lookup(policy, args.service)
    except DiscoveryError as exc:
        print(f"{args.service}: lookup failed: {exc}", file=sys.stderr)
        return 1
    discovery = policy.resolved[args.service].discovery
    ttl = resolution.ttl_s
    cached = None
    if ttl is not None and discovery is not None:
        config = ScheduleConfig(min_ttl_s=discovery.min_ttl, max_ttl_s=discovery.max_ttl)
        cached = min(max(ttl, config.min_ttl_s), config.max_ttl_s)
    rows = [{"address": e.key, "source": e.source, "weight": e.weight,
             "priority": e.priority, "zone": e.zone, "ttl_s": ttl, "cached_s": cached,
             "metadata": dict(e.metadata)} for e in resolution.endpoints]
    if args.json:
        print(json.dumps({"service": args.service, "source": resolution.source,
                          "endpoints": rows}, indent=2))
    else:
        _table(args.service, resolution, rows)
    return 0 if rows else 1


def _table(service: str, resolution: Resolution, rows: list[dict[str, Any]]) -> None:
    if not rows:
        gone = "" if resolution.exists else " (the name does not exist)"
        print(f"{service}: no endpoints from {resolution.source}{gone}")
        return
    header = ("ADDRESS", "SOURCE", "WEIGHT", "PRIORITY", "ZONE", "TTL")
    lines = [header] + [
        (r["address"], r["source"], str(r["weight"]), str(r["priority"]), r["zone"] or "-",
         "-" if r["ttl_s"] is None else f"{r['ttl_s']:g}s (cached {r['cached_s']:g}s)")
        for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
