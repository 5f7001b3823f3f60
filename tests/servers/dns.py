"""A real dnsmasq on a loopback port, its records written by the test (installed by .ci/run).

`DnsServer.set(a={name: [ips]}, srv={name: [(target, port, priority, weight)]})` rewrites
the configuration and restarts dnsmasq on the same port (a restart takes milliseconds);
`stop()` takes DNS away, `start()` brings it back. dnsmasq is authoritative for
`mesh.test` (`local=`), so an unknown name there is NXDOMAIN, and it forwards nothing.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import dns.exception
import dns.resolver
import pytest

from tests.servers.ports import free_port

DOMAIN = "mesh.test"


def _free_udp_port(host: str) -> int:
    import socket

    for _ in range(20):
        port = free_port(host)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port for dnsmasq")


class DnsServer:
    def __init__(self, host: str = "127.0.0.1", ttl: int = 1) -> None:
        self.host = host
        self.port = _free_udp_port(host)
        self.ttl = ttl
        self.dir = Path(tempfile.mkdtemp(prefix="meshclient-dnsmasq-"))
        self.a: dict[str, list[str]] = {}
        self.srv: dict[str, list[tuple[str, int, int, int]]] = {}
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _config(self) -> str:
        lines = [f"port={self.port}", f"listen-address={self.host}", "bind-interfaces",
                 "no-resolv", "no-hosts", "no-negcache", f"local=/{DOMAIN}/",
                 f"local-ttl={self.ttl}", f"pid-file={self.dir / 'pid'}"]
        if os.getuid() == 0:
            lines.append("user=root")  # else it drops to nobody, who cannot read our files
        for name, ips in sorted(self.a.items()):
            lines += [f"host-record={name},{ip},{self.ttl}" for ip in ips]
        for name, records in sorted(self.srv.items()):
            lines += [f"srv-host={name},{target},{port},{priority},{weight}"
                      for target, port, priority, weight in records]
        return "\n".join(lines) + "\n"

    def set(self, a: Mapping[str, Sequence[str]] | None = None,
            srv: Mapping[str, Sequence[tuple[str, int, int, int]]] | None = None) -> None:
        """Replace the records and restart (if running)."""
        if a is not None:
            self.a = {k: list(v) for k, v in a.items()}
        if srv is not None:
            self.srv = {k: list(v) for k, v in srv.items()}
        if self._proc is not None:
            self.stop()
            self.start()

    def start(self) -> DnsServer:
        if self._proc is not None:
            return self
        conf = self.dir / "dnsmasq.conf"
        conf.write_text(self._config())
        self._proc = subprocess.Popen(
            ["dnsmasq", "--keep-in-foreground", f"--conf-file={conf}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        probe = dns.resolver.Resolver(configure=False)
        probe.nameservers = [self.host]
        probe.port = self.port
        probe.lifetime = 0.05
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self._proc.poll() is None:
            try:
                probe.resolve(f"probe.{DOMAIN}", "A")
                return self
            except dns.resolver.NXDOMAIN:
                return self  # it answers
            except dns.exception.DNSException:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"dnsmasq did not start on {self.address}")

    def pause(self) -> None:
        """SIGSTOP: the port stays bound but nothing answers (lookups time out)."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"<DnsServer {self.address} {'running' if self._proc else 'stopped'}>"


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    if shutil.which("dnsmasq") is None:
        pytest.fail("dnsmasq is not installed (.ci/run installs dnsmasq-base)")
    server = DnsServer().start()
    try:
        yield server
    finally:
        server.close()
