"""A real TLS server (uvicorn) on a loopback address, with a certificate for a logical
service name from a `trustme` CA: proves TLS is verified against the service name while the
URL names the IP."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import trustme
import uvicorn

from tests.servers.threaded import run_uvicorn


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    body = json.dumps({"host": headers.get("host"), "path": scope["path"],
                       "scheme": scope["scheme"]}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class TLSServer:
    """`TLSServer(ca, "users", host="127.0.0.5", directory=tmp_path)`; `.port` once started."""

    def __init__(self, ca: trustme.CA, name: str, *, host: str, directory: Path) -> None:
        cert = ca.issue_cert(name)
        self.certfile = directory / f"{name}.pem"
        cert.private_key_and_cert_chain_pem.write_to_path(str(self.certfile))
        self.host = host
        self._socket = socket.socket()
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, 0))
        self.port = int(self._socket.getsockname()[1])
        config = uvicorn.Config(_app, log_level="error", lifespan="off", timeout_graceful_shutdown=1,
                                ssl_certfile=str(self.certfile), ssl_keyfile=str(self.certfile))
        self._server = uvicorn.Server(config)

    def __enter__(self) -> TLSServer:
        self._thread = run_uvicorn(self._server, f"tls-{self.host}", daemon=True,
                                   sockets=[self._socket])
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._server.force_exit = True  # do not wait for clients' keep-alive TLS connections
        self._thread.join(10)
        self._socket.close()
