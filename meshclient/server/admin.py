"""The admin endpoint: live state of every mesh registry in the process, as JSON.

Off by default. `MESHCLIENT_ADMIN=127.0.0.1:9990` starts it (a daemon thread) when the
first transport is built (if the port is taken, e.g. by a sibling worker process, a
warning is logged and the process carries on); `serve(host, port)` starts one explicitly.
It binds exactly the host named: loopback unless a non-loopback address is asked for (then
a warning is logged, since the data names every endpoint).

Only requests whose `Host` header names a loopback address (127.0.0.0/8, ::1),
`localhost`, the host it binds or one of `MESHCLIENT_ADMIN_HOSTS` are answered; any other
(or none) gets 403, so a web page that rebinds its own DNS name to 127.0.0.1 cannot read
it from a browser. With `MESHCLIENT_ADMIN_TOKEN` set, a request must also carry
`Authorization: Bearer <token>` (compared in constant time), else 401. `GET /status`
(or `/`) answers:

```json
{"pid": 1234, "registries": [{"policy": "v7", "generation": 3,
                              "services": {"users": {"endpoints": [...]}}}]}
```
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import threading
import weakref
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from ..policy import settings_from_env, trust_from_env

if TYPE_CHECKING:
    from .._runtime import Registry
    from ..policy import PolicyStore

logger = logging.getLogger("meshclient")

_lock = threading.Lock()
# Registry -> its store, both weakly: the store holds the registry as an attachment.
_tracked: weakref.WeakKeyDictionary[Registry, weakref.ref[PolicyStore]] = \
    weakref.WeakKeyDictionary()
_env_server: AdminServer | None = None
_env_checked = False


def track(store: PolicyStore, registry: Registry) -> None:
    """Called by every transport: include its registry in the status; on the first call,
    start the endpoint `MESHCLIENT_ADMIN` names (raises `PolicyError` if invalid)."""
    global _env_server, _env_checked
    with _lock:
        if registry not in _tracked:
            _tracked[registry] = weakref.ref(store)
        if _env_checked:
            return
        admin = settings_from_env().admin
        _env_checked = True
    if admin is not None:
        try:
            server = serve(*admin)  # token and extra hosts from the environment
        except OSError as exc:  # e.g. a sibling worker process already holds the port
            logger.warning("admin endpoint %s:%s not started: %s", admin[0], admin[1], exc)
            return
        with _lock:
            _env_server = server


def status() -> dict[str, Any]:
    """The document the admin endpoint serves."""
    with _lock:
        pairs = [(reg, ref()) for reg, ref in _tracked.items()]
    registries = []
    for registry, store in pairs:
        if store is None:
            continue
        generation, policy = store.snapshot
        entry = {"policy": policy.version, "generation": generation,
                 "services": registry.snapshot()}
        if store.xds is not None:
            entry["xds"] = store.xds.snapshot()
        registries.append(entry)
    return {"pid": os.getpid(), "registries": registries}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(header: str | None) -> str | None:
    """The host of a `Host` header, lower-cased, without port, brackets or a final dot."""
    if not header:
        return None
    header = header.strip().lower()
    if header.startswith("["):
        name, sep, rest = header[1:].partition("]")
        if not sep or (rest and not (rest[:1] == ":" and rest[1:].isdigit())):
            return None
        return name
    name, sep, port = header.rpartition(":")
    if sep and port.isdigit():
        header = name
    if ":" in header:  # an IPv6 address must be bracketed in a Host header
        return None
    return header.rstrip(".") or None


def admit(host: str | None, authorization: str | None, names: frozenset[str],
          token: str | None) -> int | None:
    """The refusal status for a request (403: not a host this endpoint answers to; 401:
    the token is missing or wrong), or None to answer it."""
    name = host_name(host)
    if name is None or not (_is_loopback(name) or name in names):
        return 403
    if token is not None:
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                presented.strip().encode(), token.encode()):
            return 401
    return None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        refused = admit(self.headers.get("Host"), self.headers.get("Authorization"),
                        self.server.names, self.server.token)
        if refused is not None:
            self.send_response(refused)
            if refused == 401:
                self.send_header("WWW-Authenticate", 'Bearer realm="meshclient-admin"')
            body = b"forbidden host\n" if refused == 403 else b"bearer token required\n"
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path.split("?")[0] not in ("/", "/status"):
            self.send_error(404)
            return
        body = json.dumps(status(), default=str).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    names: frozenset[str] = frozenset()
    token: str | None = None


_FROM_ENV: Any = object()  # sentinel: `serve()` reads MESHCLIENT_ADMIN_TOKEN / _HOSTS


#: How often the idle server thread checks for `close()` (the standard library's default,
#: 0.5 s, made every close wait up to half a second; an idle check costs microseconds).
CLOSE_POLL_S = 0.05


class AdminServer:
    """A running admin endpoint; `close()` stops it (within `CLOSE_POLL_S`)."""

    def __init__(self, host: str, port: int, *, token: str | None = None,
                 hosts: Iterable[str] = ()) -> None:
        if not _is_loopback(host):
            logger.warning("admin endpoint listening on non-loopback address %s:%s%s", host,
                           port, "" if token else " without MESHCLIENT_ADMIN_TOKEN")
        self._server = _Server((host.strip("[]"), port), _Handler)
        bound = host.strip("[]").lower()
        self._server.names = frozenset({h.lower().rstrip(".") for h in hosts} | (
            set() if bound in ("", "0.0.0.0", "::") else {bound}))
        self._server.token = token
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": CLOSE_POLL_S},
                                        name=f"meshclient-admin-{self.port}", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> AdminServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<AdminServer {self.address}>"


def serve(host: str = "127.0.0.1", port: int = 9990, *, token: str | None = _FROM_ENV,
          hosts: Iterable[str] = _FROM_ENV) -> AdminServer:
    """Start an admin endpoint on `host:port` (port 0: any free port). `token`: the bearer
    token required (None: none); `hosts`: extra `Host` names answered. Both default to
    `MESHCLIENT_ADMIN_TOKEN` / `MESHCLIENT_ADMIN_HOSTS`."""
    if token is _FROM_ENV or hosts is _FROM_ENV:
        trust = trust_from_env()
        token = trust.admin_token if token is _FROM_ENV else token
        hosts = trust.admin_hosts if hosts is _FROM_ENV else hosts
    return AdminServer(host, port, token=token, hosts=hosts)


def reset() -> None:
    """Stop the environment's admin endpoint and re-read `MESHCLIENT_ADMIN` next time
    (tests)."""
    global _env_server, _env_checked
    with _lock:
        server, _env_server, _env_checked = _env_server, None, False
    if server is not None:
        server.close()
