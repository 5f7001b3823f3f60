"""HAProxy (`leastconn`) and nginx (`least_conn`) as a local sidecar for the sidecar
benchmark: started in the foreground on a free loopback port with a generated config in a
temporary directory (never as a system service), one worker each (a sidecar's usual
share), keep-alive to the backends; CPU read from /proc for every process of the proxy."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

_TICK = os.sysconf("SC_CLK_TCK")

HAPROXY_CONFIG = """
global
    maxconn 4096
    nbthread 1
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    option http-keep-alive
frontend sidecar
    bind 127.0.0.1:{port}
    default_backend upstream
backend upstream
    balance leastconn
    http-reuse always
{servers}
"""

NGINX_CONFIG = """
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log error;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream upstream {{
        least_conn;
{servers}
        keepalive 512;
    }}
    server {{
        listen 127.0.0.1:{port};
        keepalive_requests 1000000;
        location / {{
            proxy_pass http://upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_of(pid: int) -> float:
    """utime + stime of `pid` (all its threads), in seconds; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return out


class Sidecar:
    """One proxy process (and its workers) balancing over `backends` ("host:port")."""

    def __init__(self, kind: str, backends: list[str]) -> None:
        if kind not in ("haproxy", "nginx"):
            raise ValueError(f"sidecar kind must be haproxy or nginx, not {kind!r}")
        self.kind = kind
        self.backends = backends
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"meshclient-bench-{kind}-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._pids: list[int] = []

    @staticmethod
    def available(kind: str) -> bool:
        return (shutil.which(kind) or shutil.which(f"/usr/sbin/{kind}")) is not None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        binary = shutil.which(self.kind) or f"/usr/sbin/{self.kind}"
        if self.kind == "haproxy":
            servers = "\n".join(f"    server s{i} {b}" for i, b in enumerate(self.backends))
            config = self.dir / "haproxy.cfg"
            config.write_text(HAPROXY_CONFIG.format(port=self.port, servers=servers))
            return [binary, "-db", "-f", str(config)]
        servers = "\n".join(f"        server {b};" for b in self.backends)
        config = self.dir / "nginx.conf"
        config.write_text(NGINX_CONFIG.format(dir=self.dir, port=self.port, servers=servers))
        return [binary, "-p", str(self.dir), "-c", str(config)]

    def start(self) -> Sidecar:
        self._process = subprocess.Popen(self._command(), stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, cwd=self.dir)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{self.kind} did not start on port {self.port}") from None
                time.sleep(0.02)  # a bounded wait for the listening socket
        self._pids = [self._process.pid, *_children(self._process.pid)]
        return self

    @property
    def pid(self) -> int:
        """The proxy's main process (0 before `start()`)."""
        return self._pids[0] if self._pids else 0

    @property
    def pids(self) -> list[int]:
        """The proxy's processes: master and workers (none before `start()`)."""
        return list(self._pids)

    def cpu_seconds(self) -> float:
        """CPU used so far by the proxy's processes (master and workers)."""
        return sum(_cpu_of(pid) for pid in self._pids)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Sidecar:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
