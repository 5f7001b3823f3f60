"""The `extension_providers` section: valid providers parse, bad values are refused with the
field path and the value, and whatever a document holds the parser raises only
`PolicyError` (a property test)."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshclient import Policy, PolicyError

FIELDS = ["service", "port", "url", "path_prefix", "timeout", "fail_open", "status_on_error",
          "include_request_headers_in_check", "headers_to_upstream_on_allow",
          "headers_to_downstream_on_deny", "cache_ttl", "cache_size", "bogus"]
VALUES = (st.none() | st.booleans() | st.integers(-2, 70000) | st.floats(allow_nan=True)
          | st.sampled_from(["", "127.0.0.1", "http://127.0.0.1:9191", "ftp://x", "5s",
                             "-1s", "/p", "p", "x-tenant", "bad header", "a\r\nb", "[::1]",
                             "http://[::1]:80", "http://h:99999"])
          | st.lists(st.sampled_from(["x-a", "bad header", "", "\x00"]), max_size=3))


def doc(name: Any = "opa", **http: Any) -> dict[str, Any]:
    return {"extension_providers": [{"name": name, "ext_authz_http": http}]}


def test_a_provider_parses_with_defaults() -> None:
    policy = Policy.from_dict(doc(url="http://127.0.0.1:9191/"))
    config = policy.extension_providers[0].ext_authz_http
    assert config.base_url == "http://127.0.0.1:9191"
    assert (config.timeout, config.fail_open, config.status_on_error, config.cache_ttl) == (
        0.2, False, 403, 0.0)
    assert Policy.from_dict(policy.to_dict()) == policy  # round trip


@pytest.mark.parametrize(("bad", "message"), [
    (doc(service="authz"), "extension_providers[0].ext_authz_http.port must be set with "
                           "service: 'authz'"),
    (doc(url="http://a:1", service="a", port=1), "url or service must be set, not both"),
    (doc(url="ftp://a"), "url must be an http:// or https:// URL: 'ftp://a'"),
    (doc(url="http://a:1", timeout="0s"), "timeout must be greater than 0"),
    (doc(url="http://a:1", path_prefix="check"), "path_prefix must start with '/': 'check'"),
    (doc(url="http://a:1", include_request_headers_in_check=["x a"]),
     "include_request_headers_in_check[0] is not a valid header name: 'x a'"),
    (doc(name="no spaces", url="http://a:1"), "name must be letters"),
    ({"extension_providers": [{"name": "a", "ext_authz_http": {"url": "http://a:1"}}] * 2},
     "extension_providers[1].name is used twice: 'a'"),
])
def test_bad_values_name_the_field_and_value(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError) as info:
        Policy.from_dict(bad)
    assert message in str(info.value)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=6),
       st.sampled_from(["opa", "", "a b", 3]))
def test_any_document_parses_or_raises_policy_error(http: dict[str, Any], name: Any) -> None:
    with contextlib.suppress(PolicyError):
        Policy.from_dict(doc(name, **http))
