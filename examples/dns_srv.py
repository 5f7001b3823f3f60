"""Discovery through DNS SRV records, served by a real dnsmasq on a loopback port.

    python examples/dns_srv.py

Three `users` backends on 127.0.0.2-4 publish themselves as SRV records of
`_http._tcp.users.mesh` (port and weight per record, an A record per host), as a
Kubernetes headless service or Consul's DNS interface would. The policy names the
service by its SRV name only:

    {"services": {"users": {"discovery": "dns+srv://_http._tcp.users.mesh"}}}

and `MESHCLIENT_DNS_NAMESERVERS=127.0.0.1:PORT` points the mesh at this dnsmasq instead
of the system resolver. Needs the `dnsmasq` binary (`apt-get install dnsmasq-base`); skips
with a message when it is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter

import dns.exception
import dns.resolver

import meshclient
from meshclient.testing import Backend

SRV_NAME = "_http._tcp.users.mesh"
WEIGHTS = (10, 10, 20)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_dnsmasq(port: int, backends: list[Backend]) -> subprocess.Popen[bytes]:
    args = ["dnsmasq", "--keep-in-foreground", f"--port={port}", "--listen-address=127.0.0.1",
            "--bind-interfaces", "--no-resolv", "--no-hosts", "--pid-file=",
            "--log-facility=/dev/null", "--local-ttl=5"]
    if os.geteuid() == 0:
        args.append("--user=root")  # do not switch to `nobody` (absent in small containers)
    for i, (backend, weight) in enumerate(zip(backends, WEIGHTS, strict=True)):
        host = f"users-{i}.mesh"
        args.append(f"--srv-host={SRV_NAME},{host},{backend.port},0,{weight}")
        args.append(f"--host-record={host},{backend.host}")
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def serve_dns(backends: list[Backend]) -> tuple[subprocess.Popen[bytes], int, list[str]]:
    """dnsmasq on a free port, answering; three tries (a free port can be taken between
    the probe and dnsmasq's bind)."""
    for attempt in range(3):
        port = free_udp_port()
        proc = start_dnsmasq(port, backends)
        try:
            return proc, port, wait_for_srv(port, proc)
        except (dns.exception.DNSException, RuntimeError) as exc:
            stop(proc)
            if attempt == 2:
                raise RuntimeError(f"dnsmasq did not answer on 127.0.0.1:{port}: {exc}") from exc
    raise AssertionError("unreachable")


def wait_for_srv(port: int, proc: subprocess.Popen[bytes], timeout: float = 3.0) -> list[str]:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = port
    resolver.lifetime = 0.5
    deadline = time.monotonic() + timeout
    while True:
        try:
            return sorted(str(r) for r in resolver.resolve(SRV_NAME, "SRV"))
        except dns.exception.DNSException:
            if proc.poll() is not None:
                err = proc.stderr.read() if proc.stderr else b""
                raise RuntimeError(f"dnsmasq exited: {err!r}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def first_answer(client: meshclient.Client, timeout: float = 5.0) -> None:
    """The first lookup may still be in flight when the first request is made; wait for
    it (bounded) rather than count a cold start as a failure."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.get("http://users/warm-up")
            return
        except meshclient.NoEndpointsAvailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def main() -> int:
    if shutil.which("dnsmasq") is None:
        print("skipped: dnsmasq is not installed (apt-get install dnsmasq-base)")
        return 0
    backends = [Backend(f"127.0.0.{2 + i}", name=f"users-{i}").start() for i in range(3)]
    proc = None
    try:
        proc, port, records = serve_dns(backends)
        print(f"dnsmasq on 127.0.0.1:{port} serves {SRV_NAME}:")
        for record in records:
            print(f"  SRV {record}   (priority weight port target)")
        os.environ["MESHCLIENT_DNS_NAMESERVERS"] = f"127.0.0.1:{port}"
        try:
            policy = meshclient.Policy.from_dict(
                {"services": {"users": {"discovery": f"dns+srv://{SRV_NAME}"}}})
        except meshclient.PolicyError as exc:
            print(f"skipped the mesh part: DNS discovery is not available in this build "
                  f"({exc.errors[0]})")
            return 0
        seen: Counter[str] = Counter()
        with meshclient.Client(policy=policy, timeout=5.0) as client:
            first_answer(client)
            for i in range(80):
                r = client.get(f"http://users/users/{i}")
                seen[r.headers.get("x-backend", "?")] += 1
        print("80 requests to http://users/ through the mesh, answered by: "
              + ", ".join(f"{name} {n}" for name, n in sorted(seen.items())))
        print("(endpoints came from DNS alone: SRV for ports and weights, A for addresses)")
    finally:
        if proc is not None:
            stop(proc)
        for backend in backends:
            backend.stop()
    print("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
