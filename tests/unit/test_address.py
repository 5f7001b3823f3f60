"""Re-addressing a request to an endpoint: the shortcut gives exactly what `copy_with` does."""

from __future__ import annotations

import httpx
import pytest

from meshclient._core.address import (
    _address_self_check,
    _fast_address,
    _fast_header,
    _fast_headers,
    _fast_host,
    _slow_address,
    _slow_header,
    _slow_headers,
    address_request,
    attempt_headers,
    header,
    host_key,
    with_headers,
)
from meshclient.discovery.endpoint import Endpoint
from meshclient.policy import Policy

URLS = ["http://users/", "http://users/v1/users/42?x=1&y=%20z#frag", "https://u:p@users:9/a",
        "http://USERS/Caps/Path", "http://users/%E2%82%AC?q=%E2%82%AC"]
TARGETS = [("http", "127.0.0.2", 8001), ("https", "127.0.0.3", 443), ("http", "::1", 80),
           ("https", "Backend.Example", 8443)]


def test_the_shortcut_is_active() -> None:
    assert with_headers is _fast_headers and header is _fast_header
    assert address_request is _fast_address and host_key is _fast_host


def test_a_failed_self_check_falls_back_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    import meshclient._core.address as address

    monkeypatch.setattr(address, "_fast_host", lambda request: "not-the-host")
    with pytest.warns(RuntimeWarning, match="httpx's internals differ"):
        assert _address_self_check() == (address._slow_address, address._slow_host)


@pytest.mark.slow
@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("target", TARGETS)
def test_fast_address_matches_a_rebuilt_request(url: str, target: tuple[str, str, int]) -> None:
    scheme, host, port = target
    request = httpx.Client().build_request("PUT", url, content=b"abc", headers={"X-A": "1"})
    service, endpoint = _service(scheme), Endpoint(host, port)
    for args in ((), (None, "900", 1), (None, "900", 2)):  # a plain copy; attempts 1 and 2
        fast = _fast_address(request, service, endpoint, *args)  # type: ignore[arg-type]
        slow = _slow_address(request, service, endpoint, *args)  # type: ignore[arg-type]
        assert fast.url == slow.url and str(fast.url) == str(slow.url)
        assert fast.headers.raw == slow.headers.raw and fast.method == slow.method
        assert fast.extensions == slow.extensions and fast.content == slow.content == b"abc"


@pytest.mark.parametrize("base", [
    [("Host", "users")],
    [("Host", "users"), ("X-Mesh-Attempt", "4"), ("x-other", "1"), ("x-mesh-attempt", "7")],
    [("Host", "users"), ("X-Mesh-Deadline-Ms", "5"), ("x-other", "1")],
])
@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_attempt_headers(base: list[tuple[str, str]], attempt: int) -> None:
    request = httpx.Request("GET", "http://users/", headers=base)
    fast = _fast_address(request, _service("http"), Endpoint("127.0.0.2", 80),  # type: ignore[arg-type]
                         None, "900", attempt).headers
    slow = attempt_headers(request.headers, "900", attempt)
    assert fast.raw == slow.raw and list(fast.multi_items()) == list(slow.multi_items())
    # the deadline always; the attempt number only from the second attempt (absent: 1), and
    # a stale one the caller forwarded never survives
    assert fast.get_list("x-mesh-deadline-ms") == ["900"]
    assert fast.get_list("x-mesh-attempt") == ([] if attempt == 1 else [str(attempt)])
    assert fast.get("x-other") == dict(base).get("x-other")


@pytest.mark.parametrize("base", [
    [("Host", "users")],
    [("Host", "users"), ("X-Mesh-Attempt", "1"), ("x-other", "1"), ("x-mesh-attempt", "7")],
    [("Host", "users"), ("x-mesh-deadline-ms", "5")],
])
def test_fast_headers_match_update(base: list[tuple[str, str]]) -> None:
    extra = {"x-mesh-deadline-ms": "900", "x-mesh-attempt": "2"}
    headers = httpx.Headers(base)
    fast, slow = _fast_headers(headers, extra), _slow_headers(headers, extra)
    assert fast.raw == slow.raw and fast.encoding == slow.encoding
    assert headers.raw == httpx.Headers(base).raw  # the original is untouched


@pytest.mark.parametrize("base", [
    [], [("Host", "users")], [("Content-Length", "12")],
    [("content-length", "1"), ("X", "y"), ("Content-Length", "2")],
    [(b"caf\xc3\xa9", b"cr\xc3\xa8me"), (b"content-length", b"\xc3\xa9")],
])
def test_fast_header_matches_get(base: list[tuple[str, str]]) -> None:
    for name in (b"content-length", b"host", b"x"):
        assert _fast_header(httpx.Headers(base), name) == _slow_header(httpx.Headers(base), name)


def _service(scheme: str) -> object:
    policy = Policy.from_dict({"services": {"users": {"scheme": scheme,
                                                      "endpoints": ["127.0.0.2:8001"]}}})
    return policy.resolved["users"]


def test_address_request_keeps_host_and_sets_sni() -> None:
    request = httpx.Client().build_request("POST", "https://users/v1?a=1", content=b"body",
                                           headers={"X-A": "1"}, extensions={"timeout": {}})
    out = address_request(request, _service("https"), Endpoint("127.0.0.2", 8001),  # type: ignore[arg-type]
                          headers=with_headers(request.headers, {"X-Attempt": "2"}))
    assert str(out.url) == "https://127.0.0.2:8001/v1?a=1"
    assert out.headers["Host"] == "users" and out.headers["X-Attempt"] == "2"
    assert out.extensions["sni_hostname"] == "users" and "timeout" in out.extensions
    assert out.stream is request.stream and out.method == "POST"
    # the caller's request is unchanged
    assert "X-Attempt" not in request.headers and "sni_hostname" not in request.extensions
    assert str(request.url) == "https://users/v1?a=1"


def test_address_request_plain_http_has_no_sni() -> None:
    request = httpx.Request("GET", "http://users/")
    out = address_request(request, _service("http"), Endpoint("127.0.0.2", 8001))  # type: ignore[arg-type]
    assert str(out.url) == "http://127.0.0.2:8001/" and "sni_hostname" not in out.extensions


def test_copy_does_not_share_mutable_parts() -> None:
    request = httpx.Request("GET", "http://users/", extensions={"k": 1})
    out = address_request(request, _service("http"), Endpoint("127.0.0.2", 8001))  # type: ignore[arg-type]
    out.headers["traceparent"] = "00-x"
    out.extensions["meshclient.attempt"] = 2
    assert "traceparent" not in request.headers
    assert "meshclient.attempt" not in request.extensions


def test_attempt_header_names_match_the_context_module() -> None:
    from meshclient._core import address
    from meshclient.context import ATTEMPT_HEADER, DEADLINE_HEADER

    assert address._DEADLINE.decode() == DEADLINE_HEADER
    assert address._ATTEMPT.decode() == ATTEMPT_HEADER
