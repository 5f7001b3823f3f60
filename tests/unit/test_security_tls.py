"""SPIFFE matching and the rotating context's reload schedule (FakeClock, real files)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from meshclient.policy._security import TlsPolicy
from meshclient.security.tls import RotatingContext, TlsError, check_spiffe, spiffe_matches
from meshclient.testing import FakeClock
from tests.servers.certs import CA, write_atomic


def test_spiffe_matching_rules() -> None:
    sid = "spiffe://example.org/ns/prod/sa/api"
    assert spiffe_matches(sid, sid)
    assert not spiffe_matches(sid + "x", sid)
    assert spiffe_matches(sid, "spiffe://example.org")
    assert not spiffe_matches("spiffe://example.org.evil/ns", "spiffe://example.org")
    assert spiffe_matches(sid, "spiffe://example.org/ns/prod/*")
    assert not spiffe_matches("spiffe://example.org/ns/dev/sa/api", "spiffe://example.org/ns/prod/*")


def test_check_spiffe_requires_exactly_one_uri_san() -> None:
    one = {"subjectAltName": (("DNS", "api"), ("URI", "spiffe://td/a"))}
    check_spiffe(one, "spiffe://td/a")
    two = {"subjectAltName": (("URI", "spiffe://td/a"), ("URI", "spiffe://td/b"))}
    with pytest.raises(ssl.SSLCertVerificationError, match="2 URI SANs"):
        check_spiffe(two, "spiffe://td/a")
    with pytest.raises(ssl.SSLCertVerificationError, match="0 URI SANs"):
        check_spiffe({}, "spiffe://td/a")
    with pytest.raises(ssl.SSLCertVerificationError, match="does not match"):
        check_spiffe(one, "spiffe://td/b")


def test_reload_checked_at_most_every_interval(tmp_path: Path) -> None:
    ca = CA()
    (tmp_path / "ca.pem").write_bytes(ca.pem)
    cert, key = ca.issue("a", client=True)
    write_atomic(tmp_path / "c.pem", cert)
    write_atomic(tmp_path / "k.pem", key)
    policy = TlsPolicy(ca=str(tmp_path / "ca.pem"), cert=str(tmp_path / "c.pem"),
                       key=str(tmp_path / "k.pem"), reload=5.0)
    clock = FakeClock()
    ctx = RotatingContext(policy, clock)
    first = ctx.current
    cert, key = ca.issue("b", client=True)
    write_atomic(tmp_path / "k.pem", key)
    write_atomic(tmp_path / "c.pem", cert)
    assert not ctx.maybe_reload()  # not due yet
    clock.advance(5)
    assert ctx.maybe_reload()
    assert ctx.current is not first and ctx.generation == 2
    clock.advance(5)
    assert not ctx.maybe_reload()  # unchanged files: nothing rebuilt
    assert "generation=2" in repr(ctx)


def test_policy_errors_name_the_field() -> None:
    with pytest.raises(Exception, match="cert and key must be set together"):
        TlsPolicy(cert="x")
    with pytest.raises(Exception, match="spiffe_id must look like spiffe://"):
        TlsPolicy(spiffe_id="https://example.org")
    with pytest.raises(TlsError, match="cannot read"):
        RotatingContext(TlsPolicy(ca="/nonexistent/ca.pem"))
