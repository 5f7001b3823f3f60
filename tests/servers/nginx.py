"""A real nginx on loopback serving files with ETags: the tests' control endpoint.

The config lives in a temp dir (`daemon off`, its own pid, error and access logs, temp
paths), so nginx runs unprivileged and leaves nothing behind. `publish(name, text)` writes a
file atomically and moves its mtime forward, so every edit gets a new ETag (nginx's ETag is
mtime + size, and two edits within a second could otherwise share one). The access log
records method, URI, status and the request's `If-None-Match`, one line per request.
`/secure/…` requires `Authorization: Bearer s3cret`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.ports import free_port
from tests.servers.process import ServerProcess, require, workdir

TOKEN = "s3cret"

_CONFIG = """
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    types {{ application/json json; application/toml toml; }}
    default_type application/octet-stream;
    log_format mesh '$request_method $uri $status "$http_if_none_match"';
    access_log {dir}/access.log mesh;
    server {{
        listen {host}:{port}{tls};
        root {dir}/www;
        etag on;
        {tls_files}
        location /secure/ {{
            if ($http_authorization != "Bearer {token}") {{ return 401; }}
        }}
    }}
}}
"""


class NginxServer(ServerProcess):
    """`tls=(certificate_chain_path, key_path)` serves HTTPS instead of HTTP."""

    name = "nginx"
    dir: Path

    def __init__(self, host: str = "127.0.0.1", tls: tuple[str, str] | None = None) -> None:
        self.host = host
        self.scheme = "https" if tls else "http"
        self.port = free_port(host)
        self.address = f"{host}:{self.port}"
        self.dir = workdir("nginx")
        self.dir.chmod(0o755)  # nginx started as root serves as "nobody"
        (self.dir / "www" / "secure").mkdir(parents=True)
        (self.dir / "tmp").mkdir()
        (self.dir / "nginx.conf").write_text(_CONFIG.format(
            dir=self.dir, host=host, port=self.port, token=TOKEN, tls=" ssl" if tls else "",
            tls_files=(f"ssl_certificate {tls[0]}; ssl_certificate_key {tls[1]};"
                       if tls else "")))
        self._mtime = time.time()

    def url(self, name: str) -> str:
        return f"{self.scheme}://{self.host}:{self.port}/{name}"

    def publish(self, name: str, text: str) -> None:
        """Replace `www/<name>` atomically with a fresh mtime (hence a fresh ETag)."""
        path = self.dir / "www" / name
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        self._mtime = max(self._mtime + 2, time.time())
        os.utime(tmp, (self._mtime, self._mtime))
        os.replace(tmp, path)

    def access_log(self) -> list[str]:
        with contextlib.suppress(FileNotFoundError):
            return (self.dir / "access.log").read_text().splitlines()
        return []

    def argv(self) -> list[str]:
        return ["nginx", "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"),
                "-e", str(self.dir / "error.log")]

    def answers(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection((self.host, self.port),
                                                                   timeout=0.2):
            return True
        return False

    def failure(self) -> str:
        return f"nginx did not start: {(self.dir / 'error.log').read_text()}"


@pytest.fixture
def nginx_server() -> Iterator[NginxServer]:
    require("nginx")
    with NginxServer() as server:
        yield server


@pytest.fixture
def nginx_tls_server(tmp_path: Path) -> Iterator[tuple[NginxServer, str]]:
    """nginx over HTTPS with a certificate for 127.0.0.1 from a throwaway CA (trustme);
    yields the server and the CA bundle path."""
    import trustme

    require("nginx")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    chain, key, ca_path = tmp_path / "chain.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_pem.write_to_path(str(key))
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    ca.cert_pem.write_to_path(str(ca_path))
    tmp_path.chmod(0o755)
    key.chmod(0o644)  # the nginx master (root) reads it; workers never do
    with NginxServer(tls=(str(chain), str(key))) as server:
        yield server, str(ca_path)
