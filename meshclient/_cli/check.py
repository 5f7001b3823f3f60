"""`meshclient check FILE`: validate a policy; print it normalised, or every error and exit 2."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..errors import PolicyError
from ..policy import load_policy_file


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("check", help="validate a policy file and print it normalised")
    p.add_argument("file", help="a JSON or TOML policy file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        policy = load_policy_file(args.file)
    except PolicyError as exc:
        print(f"{args.file}: {len(exc.errors)} error(s)", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return 2
    print(json.dumps(policy.to_dict(), indent=2))
    return 0
