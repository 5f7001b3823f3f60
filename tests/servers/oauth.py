"""A real OAuth2 token endpoint (client credentials grant, RFC 6749 section 4.4) on loopback:
checks HTTP Basic client authentication, counts token requests, issues `tok-<n>`.

Fault knobs (switch them while it runs): `status`; `expires_in` (any JSON value, or a raw
JSON text through `raw_expires`, such as `1e400`); `body` (bytes sent instead of the JSON
answer); `drip_s` (send the body one byte at a time, this long apart)."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse

from tests.servers.threaded import QuietHandler, ThreadedHTTPServer


class _Handler(QuietHandler):
    def do_POST(self) -> None:
        owner: TokenEndpoint = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        expected = base64.b64encode(f"{owner.client_id}:{owner.secret}".encode()).decode()
        with owner.lock:
            owner.requests += 1
            n = owner.requests
            owner.forms.append({k: v[0] for k, v in form.items()})
        time.sleep(owner.delay_s)  # the scenario: a slow token endpoint
        if owner.status != 200:
            status, body = owner.status, {"error": "temporarily_unavailable"}
        elif self.headers.get("Authorization") != f"Basic {expected}" or form.get(
                "grant_type") != ["client_credentials"]:
            status, body = 401, {"error": "invalid_client"}
        else:
            status, body = 200, {"access_token": f"tok-{n}", "token_type": "Bearer",
                                 "expires_in": owner.expires_in}
        data = json.dumps(body).encode()
        if status == 200 and owner.raw_expires is not None:
            data = (f'{{"access_token": "tok-{n}", "token_type": "Bearer", '
                    f'"expires_in": {owner.raw_expires}}}').encode()
        if status == 200 and owner.body is not None:
            data = owner.body
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if owner.drip_s <= 0:
            self.wfile.write(data)
            return
        for i in range(len(data)):
            if owner.stopping.wait(owner.drip_s):
                return
            self.wfile.write(data[i:i + 1])
            self.wfile.flush()


class TokenEndpoint(ThreadedHTTPServer):
    def __init__(self, client_id: str = "app", secret: str = "s3cret-value",
                 expires_in: object = 60, delay_s: float = 0.0) -> None:
        self.client_id = client_id
        self.secret = secret
        self.expires_in = expires_in
        self.delay_s = delay_s
        self.status = 200
        self.raw_expires: str | None = None
        self.body: bytes | None = None
        self.drip_s = 0.0
        self.stopping = threading.Event()
        self.requests = 0
        self.forms: list[dict[str, str]] = []
        self.lock = threading.Lock()
        super().__init__(_Handler)
        self.url = f"http://{self.address}/oauth/token"

    def stop(self) -> None:
        self.stopping.set()  # a dripping answer ends
        super().stop()
