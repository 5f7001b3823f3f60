"""A real HTTPS server on loopback that requires a client certificate and answers, as JSON,
who the client was (subject CN, serial, URI SANs). `close_each=True` closes the connection
after every answer, so every request makes a new TLS handshake."""

from __future__ import annotations

import json
import ssl
import threading
from typing import Any

from tests.servers.threaded import OwnedHTTPServer, QuietHandler, ThreadedHTTPServer


class _Server(OwnedHTTPServer):
    owner: TlsServer

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        return self.owner.context.wrap_socket(sock, server_side=True,
                                              do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.owner.handshake_failures += 1


class _Handler(QuietHandler):
    def setup(self) -> None:
        self.request.do_handshake()
        super().setup()

    def do_GET(self) -> None:
        cert = self.connection.getpeercert() or {}
        subject = dict(x[0] for x in cert.get("subject", ()))
        body = json.dumps({
            "cn": subject.get("commonName"), "serial": cert.get("serialNumber"),
            "uris": [v for k, v in cert.get("subjectAltName", ()) if k == "URI"],
            "headers": dict(self.headers.items()),
        }).encode()
        owner = self.server.owner
        with owner.lock:
            owner.seen.append(subject.get("commonName"))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if owner.close_each:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)


class TlsServer(ThreadedHTTPServer):
    def __init__(self, ca_pem_file: str, cert_file: str, key_file: str, *,
                 require_client: bool = True, close_each: bool = False) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_file, key_file)
        ctx.load_verify_locations(cafile=ca_pem_file)
        ctx.verify_mode = ssl.CERT_REQUIRED if require_client else ssl.CERT_OPTIONAL
        self.context = ctx
        self.close_each = close_each
        self.lock = threading.Lock()
        self.seen: list[str | None] = []
        self.handshake_failures = 0
        super().__init__(_Handler, server_class=_Server)
