"""https services: the URL names the endpoint's IP, TLS is verified against the logical
name (httpx's `sni_hostname` extension). Both shells, real TLS (uvicorn + trustme)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from meshclient import Policy
from tests.servers.tls import TLSServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def users_tls(ca: trustme.CA, tmp_path: Path) -> Iterator[TLSServer]:
    with TLSServer(ca, "users", host="127.0.0.5", directory=tmp_path) as server:
        yield server


def _context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def test_tls_verified_against_the_service_name(mesh, ca: trustme.CA,
                                               users_tls: TLSServer) -> None:
    policy = Policy.from_dict({"services": {"users": {
        "scheme": "https", "endpoints": [f"127.0.0.5:{users_tls.port}"]}}})
    caller = mesh(policy, verify=_context(ca))
    for url in ("https://users/v1/ping", "http://users/v1/ping"):  # the policy sets the scheme
        r = caller.get(url)
        assert r.status_code == 200
        assert r.json() == {"host": "users", "path": "/v1/ping", "scheme": "https"}


def test_bare_ip_fails_verification(mesh, ca: trustme.CA, users_tls: TLSServer) -> None:
    """Control: the certificate does not name the IP, so without the mesh's SNI it fails."""
    caller = mesh(None, verify=_context(ca))
    with pytest.raises(httpx.ConnectError, match=r"(?i)certificate"):
        caller.get(f"https://127.0.0.5:{users_tls.port}/")


def test_wrong_service_name_fails_verification(mesh, ca: trustme.CA,
                                               users_tls: TLSServer) -> None:
    policy = Policy.from_dict({"services": {"billing": {
        "scheme": "https", "endpoints": [f"127.0.0.5:{users_tls.port}"]}}})
    caller = mesh(policy, verify=_context(ca))
    with pytest.raises(httpx.ConnectError, match=r"(?i)certificate"):
        caller.get("https://billing/")
