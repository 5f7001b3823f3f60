"""A real dnsmasq on a loopback port, its records written by the test (installed by
scripts/install-test-servers.sh).

`DnsServer.set(a={name: [ips]}, srv={name: [(target, port, priority, weight)]})` rewrites
the configuration and restarts dnsmasq on the same port (a restart takes milliseconds);
`stop()` takes DNS away, `start()` brings it back. dnsmasq is authoritative for
`mesh.test` (`local=`), so an unknown name there is NXDOMAIN, and it forwards nothing.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import dns.exception
import dns.resolver
import pytest

from tests.servers.ports import free_port
from tests.servers.process import ServerProcess, require, workdir

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


class DnsServer(ServerProcess):
    name = "dnsmasq"
    dir: Path

    def __init__(self, host: str = "127.0.0.1", ttl: int = 1) -> None:
        self.host = host
        self.port = _free_udp_port(host)
        self.ttl = ttl
        self.dir = workdir("dnsmasq")
        self.a: dict[str, list[str]] = {}
        self.srv: dict[str, list[tuple[str, int, int, int]]] = {}
        self._probe = dns.resolver.Resolver(configure=False)
        self._probe.nameservers = [host]
        self._probe.port = self.port
        self._probe.lifetime = 0.05

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

    def prepare(self) -> None:
        (self.dir / "dnsmasq.conf").write_text(self._config())

    def argv(self) -> list[str]:
        return ["dnsmasq", "--keep-in-foreground", f"--conf-file={self.dir / 'dnsmasq.conf'}"]

    def answers(self) -> bool:
        try:
            self._probe.resolve(f"probe.{DOMAIN}", "A")
        except dns.resolver.NXDOMAIN:
            pass  # it answers
        except dns.exception.DNSException:
            return False
        return True

    def pause(self) -> None:
        """SIGSTOP: the port stays bound but nothing answers (lookups time out)."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)  # a paused dnsmasq cannot take SIGTERM
        super().stop()


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    require("dnsmasq")
    with DnsServer() as server:
        yield server
