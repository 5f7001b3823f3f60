"""Local HAProxy (`leastconn`) and nginx (`least_conn`) in front of loopback backends, for
benchmarks that compare meshclient's balancer with a sidecar's: generated configs, free
loopback ports, started and stopped by the benchmark (never left running)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: The proxies and their balancing directive.
KINDS = ("haproxy-leastconn", "nginx-least_conn")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _haproxy_config(port: int, backends: list[str]) -> str:
    servers = "\n".join(f"    server b{i} {a}" for i, a in enumerate(backends))
    return f"""global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    option http-keep-alive
frontend f
    bind 127.0.0.1:{port}
    default_backend b
backend b
    balance leastconn
{servers}
"""


def _nginx_config(port: int, backends: list[str], root: Path) -> str:
    servers = "\n".join(f"        server {a};" for a in backends)
    return f"""worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {root};
    proxy_temp_path {root};
    fastcgi_temp_path {root};
    uwsgi_temp_path {root};
    scgi_temp_path {root};
    upstream b {{
        least_conn;
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://b;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"proxy exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.02)  # polling a port that is not open yet (bounded)
    raise RuntimeError(f"proxy did not listen on 127.0.0.1:{port} within {timeout_s}s")


@contextmanager
def proxy(kind: str, backends: list[str]) -> Iterator[tuple[str, int]]:
    """Run `kind` (one of `KINDS`) over `backends`; yields (address, pid)."""
    root = Path(tempfile.mkdtemp(prefix="meshclient-proxy-"))
    port = _free_port()
    if kind == "haproxy-leastconn":
        conf = root / "haproxy.cfg"
        conf.write_text(_haproxy_config(port, backends))
        cmd = ["haproxy", "-f", str(conf), "-db"]
    elif kind == "nginx-least_conn":
        conf = root / "nginx.conf"
        conf.write_text(_nginx_config(port, backends, root))
        cmd = ["nginx", "-c", str(conf), "-p", str(root)]
    else:
        raise ValueError(f"proxy kind must be one of {KINDS}: {kind!r}")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port, proc)
        yield f"127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)
