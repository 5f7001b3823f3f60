"""gRPC's own xDS client, run as a child process (`python -m tests.servers.grpc_xds_client
TARGET`) so `GRPC_XDS_BOOTSTRAP` is set only there. For each line `N` read on stdin it
makes N unary calls to `TARGET` (`/test.Who/Name`, raw bytes) and prints one JSON line:
answers counted by body, and `errors`."""

from __future__ import annotations

import collections
import json
import sys

import grpc


def main() -> None:
    channel = grpc.insecure_channel(f"xds:///{sys.argv[1]}")
    call = channel.unary_unary("/test.Who/Name")
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        counts: collections.Counter[str] = collections.Counter()
        for _ in range(int(line)):
            try:
                counts[call(b"", timeout=5).decode()] += 1
            except grpc.RpcError as exc:
                counts["errors"] += 1
                counts["last_error"] = 0
                sys.stderr.write(f"{exc.code()}: {exc.details()}\n")
        print(json.dumps(dict(counts)), flush=True)


if __name__ == "__main__":
    main()
