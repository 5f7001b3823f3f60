"""Mutual TLS against a real HTTPS server that requires client certificates, through both
shells: verification by logical name, `server_name` and SPIFFE ID; rotation of the client
certificate under traffic; bad files at start-up and at reload."""

from __future__ import annotations

import logging
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import meshclient
from meshclient.policy import Policy
from meshclient.security.tls import TlsError
from tests.servers.caller import Caller
from tests.servers.certs import CA, write_atomic
from tests.servers.helpers import run_threads, wait_until
from tests.servers.mtls import TlsServer

TRUST = "spiffe://example.org"


class Pki:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.ca = CA()
        self.ca_file = root / "ca.pem"
        self.ca_file.write_bytes(self.ca.pem)
        self.cert_file, self.key_file = root / "tls.crt", root / "tls.key"
        self.client("client-1")

    def client(self, cn: str) -> None:
        cert, key = self.ca.issue(cn, uris=(f"{TRUST}/ns/test/sa/{cn}",), client=True)
        write_atomic(self.key_file, key)
        write_atomic(self.cert_file, cert)

    def server_files(self, name: str, **sans: Any) -> tuple[str, str]:
        cert, key = self.ca.issue(name, **sans)
        c, k = self.root / f"{name}-server.crt", self.root / f"{name}-server.key"
        c.write_bytes(cert)
        k.write_bytes(key)
        return str(c), str(k)

    def tls(self, **extra: Any) -> dict[str, Any]:
        return {"ca": str(self.ca_file), "cert": str(self.cert_file),
                "key": str(self.key_file), **extra}


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


def policy(address: str, tls: dict[str, Any]) -> Policy:
    return Policy.from_dict({"services": {"svc": {"scheme": "https", "endpoints": [address],
                                                   "tls": tls}}})


def test_mtls_call_verified_by_logical_name(mesh, pki: Pki) -> None:
    cert, key = pki.server_files("svc", dns=("svc",))
    with TlsServer(str(pki.ca_file), cert, key) as server:
        caller = mesh(policy(server.address, pki.tls()))
        body = caller.get("http://svc/hello").json()
        assert body["cn"] == "client-1"
        assert body["headers"]["Host"] == "svc"
        # without a client certificate the server refuses the handshake
        bare = mesh(policy(server.address, {"ca": str(pki.ca_file)}))
        # TLS 1.3 reports the server's "certificate required" alert on the first read; the
        # async httpcore backend lets that ssl.SSLError through unmapped.
        with pytest.raises((httpx.TransportError, ssl.SSLError)):
            bare.get("http://svc/hello")


def test_server_name_mismatch_is_refused(mesh, pki: Pki) -> None:
    cert, key = pki.server_files("other", dns=("other.internal",))
    with TlsServer(str(pki.ca_file), cert, key) as server:
        caller = mesh(policy(server.address, pki.tls()))
        with pytest.raises(httpx.ConnectError):
            caller.get("http://svc/")
        assert server.seen == []
        named = mesh(policy(server.address, pki.tls(server_name="other.internal")))
        assert named.get("http://svc/").json()["cn"] == "client-1"


@pytest.mark.slow
def test_spiffe_id_verified_and_mismatch_refused(mesh, pki: Pki) -> None:
    spiffe = f"{TRUST}/ns/prod/sa/svc"
    cert, key = pki.server_files("svc-spiffe", uris=(spiffe,))  # no DNS SAN at all
    with TlsServer(str(pki.ca_file), cert, key) as server:
        ok = mesh(policy(server.address, pki.tls(spiffe_id=spiffe)))
        assert ok.get("http://svc/").status_code == 200
        domain = mesh(policy(server.address, pki.tls(spiffe_id=TRUST)))
        assert domain.get("http://svc/").status_code == 200
        wrong = mesh(policy(server.address, pki.tls(spiffe_id=f"{TRUST}/ns/prod/sa/other")))
        with pytest.raises(httpx.ConnectError):
            wrong.get("http://svc/")
        other_domain = mesh(policy(server.address, pki.tls(spiffe_id="spiffe://evil.org")))
        with pytest.raises(httpx.ConnectError):
            other_domain.get("http://svc/")
        by_name = mesh(policy(server.address, pki.tls()))  # no DNS SAN "svc": refused
        with pytest.raises(httpx.ConnectError):
            by_name.get("http://svc/")


def traffic(caller: Caller, url: str, stop: threading.Event, workers: int,
            results: list[Any]) -> list[Any]:
    """Requests from `workers` concurrent loops until `stop`, each result appended to
    `results` as it comes; returns `results`."""
    if caller.kind == "sync":
        def loop() -> None:
            while not stop.is_set():
                try:
                    results.append(caller.client.get(url).json()["cn"])
                except Exception as exc:
                    results.append(exc)

        run_threads([loop] * workers, 30)
        return results

    async def run(client: httpx.AsyncClient) -> None:
        async def loop() -> None:
            while not stop.is_set():
                try:
                    results.append((await client.get(url)).json()["cn"])
                except Exception as exc:
                    results.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(workers):
                tg.start_soon(loop)

    caller.call(run)
    return results


@pytest.mark.slow
@pytest.mark.parametrize("close_each", [True, False])
def test_rotation_under_traffic_has_zero_failures(mesh, pki: Pki, caplog,
                                                  close_each: bool) -> None:
    caplog.set_level(logging.INFO, "meshclient.security")
    cert, key = pki.server_files("svc", dns=("svc",))
    with TlsServer(str(pki.ca_file), cert, key, close_each=close_each) as server:
        caller = mesh(policy(server.address, pki.tls(reload="20ms")))
        stop = threading.Event()
        results: list[Any] = []
        runner = threading.Thread(target=traffic,
                                  args=(caller, "http://svc/", stop, 3, results))
        runner.start()
        try:
            wait_until(lambda: len(results) > 10)  # traffic flows on the first certificate
            pki.client("client-2")  # key first, then cert, each replaced by rename
            if close_each:  # new connections load the new material
                wait_until(lambda: "client-2" in server.seen)
            seen = len(results)
            wait_until(lambda: len(results) > seen + 10)  # and goes on after the reload
        finally:
            stop.set()
            runner.join(30)
        results = list(results)
        failures = [r for r in results if not isinstance(r, str)]
        assert failures == []
        assert len(results) > 10
        assert results[0] == "client-1"
        if close_each:  # every request is a new connection: it presents the new certificate
            assert results[-1] == "client-2"
            assert "client-2" in server.seen
        else:  # pooled connections finish on the old one; the next connection is new
            fresh = mesh(caller.store)
            assert fresh.get("http://svc/").json()["cn"] == "client-2"
    assert any("generation 2" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_bad_file_at_reload_keeps_previous_material(mesh, pki: Pki, caplog) -> None:
    caplog.set_level(logging.WARNING, "meshclient.security")
    cert, key = pki.server_files("svc", dns=("svc",))
    with TlsServer(str(pki.ca_file), cert, key, close_each=True) as server:
        caller = mesh(policy(server.address, pki.tls(reload="10ms")))
        assert caller.get("http://svc/").json()["cn"] == "client-1"
        write_atomic(pki.cert_file, b"not a certificate")

        def n_warnings() -> int:
            return sum(r.levelno == logging.WARNING for r in caplog.records)

        wait_until(lambda: caller.get("http://svc/").json()["cn"] == "client-1"
                   and n_warnings() == 1)
        for _ in range(3):
            time.sleep(0.02)  # the scenario: past the 10 ms reload interval, the same bad file
            assert caller.get("http://svc/").json()["cn"] == "client-1"
        pki.cert_file.unlink()
        wait_until(lambda: caller.get("http://svc/").json()["cn"] == "client-1"
                   and n_warnings() == 2)
        for _ in range(3):
            time.sleep(0.02)  # the scenario: past the 10 ms reload interval, still missing
            assert caller.get("http://svc/").json()["cn"] == "client-1"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings  # one line per bad state, not per connection
    assert "keeping the previous TLS material" in warnings[0]
    assert str(pki.cert_file) in warnings[0] and str(pki.cert_file) in warnings[1]


def test_bad_files_fail_at_start_up(pki: Pki, tmp_path: Path) -> None:
    missing = policy("127.0.0.1:1", pki.tls(cert=str(tmp_path / "nope.crt")))
    with pytest.raises(TlsError, match=r"nope\.crt"):
        meshclient.MeshTransport(missing)
    _cert, other_key = pki.server_files("x", dns=("x",))
    mismatched = policy("127.0.0.1:1", pki.tls(key=other_key))
    with pytest.raises(TlsError, match=r"KEY_VALUES_MISMATCH|key values mismatch"):
        meshclient.AsyncMeshTransport(mismatched)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("garbage")
    with pytest.raises(TlsError, match=r"tls\.ca: cannot load CA bundle .*garbage\.pem"):
        meshclient.MeshTransport(policy("127.0.0.1:1", pki.tls(ca=str(garbage))))


@pytest.mark.slow
def test_bad_tls_in_a_policy_update_keeps_the_previous_settings(mesh, pki: Pki, caplog,
                                                                 tmp_path: Path) -> None:
    caplog.set_level(logging.WARNING, "meshclient.security")
    cert, key = pki.server_files("svc", dns=("svc",))
    with TlsServer(str(pki.ca_file), cert, key) as server:
        caller = mesh(policy(server.address, pki.tls()))
        assert caller.get("http://svc/").json()["cn"] == "client-1"
        caller.store.replace(policy(server.address, pki.tls(cert=str(tmp_path / "gone.crt"))))
        for _ in range(3):
            assert caller.get("http://svc/").json()["cn"] == "client-1"
    warnings = [r.getMessage() for r in caplog.records if "keeping its previous" in r.getMessage()]
    assert len(warnings) == 1 and "gone.crt" in warnings[0]
