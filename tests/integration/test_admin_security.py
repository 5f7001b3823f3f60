"""The admin endpoint answers only loopback (or configured) Host names, and requires its
bearer token when one is set: a real admin server, raw HTTP requests."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshclient import MeshTransport
from meshclient.cli import main
from meshclient.policy import Policy
from meshclient.server import admin
from tests.servers.ports import free_port


def get(server: admin.AdminServer, host: str | None, token: str | None = None,
        address: str = "127.0.0.1") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(address, server.port, timeout=5)
    try:
        conn.putrequest("GET", "/status", skip_host=True)
        if host is not None:
            conn.putheader("Host", host)
        if token is not None:
            conn.putheader("Authorization", token)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture
def server() -> Iterator[admin.AdminServer]:
    with admin.serve("127.0.0.1", 0, token=None, hosts=()) as s:
        yield s


@pytest.mark.slow
@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example",
                                  "localhost.evil.example", "10.0.0.1:{port}", "", None,
                                  "[::1", "127.0.0.1:{port}:80", "0.0.0.0:{port}"])
def test_other_hosts_are_refused(server: admin.AdminServer, host: str | None) -> None:
    status, body = get(server, None if host is None else host.format(port=server.port))
    assert status == 403
    assert b"registries" not in body


@pytest.mark.slow
@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "127.0.0.1", "127.9.8.7:{port}",
                                  "localhost:{port}", "LOCALHOST", "localhost.", "[::1]:{port}",
                                  "[::1]"])
def test_loopback_hosts_are_answered(server: admin.AdminServer, host: str) -> None:
    status, body = get(server, host.format(port=server.port))
    assert status == 200 and b"registries" in body


@pytest.mark.slow
def test_configured_names_and_the_bound_host_are_answered() -> None:
    with admin.serve("127.0.0.2", 0, token=None, hosts=("Admin.Internal",)) as server:
        assert get(server, "admin.internal:1", address="127.0.0.2")[0] == 200
        assert get(server, "127.0.0.2", address="127.0.0.2")[0] == 200
        assert get(server, "other.internal", address="127.0.0.2")[0] == 403


@pytest.mark.slow
def test_token_is_required_when_set() -> None:
    with admin.serve("127.0.0.1", 0, token="t0ken", hosts=()) as server:
        host = f"127.0.0.1:{server.port}"
        assert get(server, host)[0] == 401
        assert get(server, host, "Bearer wrong")[0] == 401
        assert get(server, host, "Basic t0ken")[0] == 401
        assert get(server, host, "Bearer t0ken")[0] == 200
        assert get(server, host, "bearer t0ken")[0] == 200
        assert get(server, "evil.example", "Bearer t0ken")[0] == 403  # both rules apply


@pytest.mark.slow
def test_environment_sets_token_and_hosts(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("MESHCLIENT_ADMIN", f"127.0.0.1:{free_port('127.0.0.1')}")
    monkeypatch.setenv("MESHCLIENT_ADMIN_TOKEN", "env-token")
    monkeypatch.setenv("MESHCLIENT_ADMIN_HOSTS", "mesh-admin.local")
    admin.reset()
    transport = MeshTransport(policy=Policy.from_dict({"services": {"users": {
        "endpoints": ["127.0.0.2:1"]}}}))
    try:
        server = admin._env_server
        assert server is not None
        assert get(server, "mesh-admin.local")[0] == 401
        assert get(server, "mesh-admin.local", "Bearer env-token")[0] == 200
        assert main(["status", "--admin", server.address]) == 0  # the CLI sends the token
        assert "policy" in capsys.readouterr().out
        monkeypatch.delenv("MESHCLIENT_ADMIN_TOKEN")
        assert main(["status", "--admin", server.address]) == 1
    finally:
        transport.close()
        admin.reset()


@given(st.text(max_size=40))
def test_host_parser_never_raises(header: str) -> None:
    name = admin.host_name(header)
    assert name is None or ":" not in name or name.count(":") >= 2  # only IPv6 keeps colons
    assert name is None or (name == name.lower() and not name.endswith("."))
    assert admin.admit(header, None, frozenset(), None) in (None, 403)


def test_close_returns_promptly() -> None:
    """The server thread notices `close()` within `CLOSE_POLL_S`, not the standard
    library's half second (best of three, so one stalled close on a busy machine does not
    decide it)."""
    took = []
    for _ in range(3):
        s = admin.serve("127.0.0.1", 0, token=None, hosts=())
        start = time.monotonic()
        s.close()
        took.append(time.monotonic() - start)
        assert not s._thread.is_alive()
    assert min(took) < 0.3, took
