"""`url.full` redaction: a parser of query strings, so property tests as well as examples."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshclient.telemetry import redact
from meshclient.telemetry.redact import (
    DEFAULT_SENSITIVE_KEYS,
    REDACTED,
    RedactionError,
    redact_query,
    redact_url,
)

KEYS = frozenset(k.lower() for k in DEFAULT_SENSITIVE_KEYS)
plain = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._~", min_size=1, max_size=12)
key = st.one_of(plain, st.sampled_from(sorted(DEFAULT_SENSITIVE_KEYS)),
                st.sampled_from(sorted(DEFAULT_SENSITIVE_KEYS)).map(str.upper))
pairs = st.lists(st.tuples(key, plain), max_size=8)


@given(pairs)
def test_sensitive_values_never_survive_and_the_rest_is_kept(items: list[tuple[str, str]]) -> None:
    query = "&".join(f"{k}={v}" for k, v in items)
    out = redact_query(query, KEYS)
    got = [part.partition("=") for part in out.split("&")] if items else []
    assert [k for k, _, _ in got] == [k for k, _ in items]  # keys and order kept
    for (k, v), (_, _, value) in zip(items, got, strict=True):
        assert value == (REDACTED if k.lower() in KEYS else v)
    assert redact_query(out, KEYS) == out  # idempotent


@given(pairs)
def test_percent_encoded_keys_are_caught(items: list[tuple[str, str]]) -> None:
    query = "&".join(f"{quote(k, safe='')}={v}" for k, v in items)
    out = redact_query(query, KEYS)
    for (k, v), part in zip(items, out.split("&") if items else [], strict=True):
        assert part.endswith("=" + (REDACTED if k.lower() in KEYS else v))


@given(st.text(max_size=40))
def test_any_query_text_is_handled(text: str) -> None:
    query = quote(text, safe="&=%+")
    out = redact_query(query, KEYS)
    assert out.count("&") == query.count("&")


@pytest.mark.parametrize(("url", "expected"), [
    ("http://users/x", "http://users/x"),
    ("http://users/x?q=1", "http://users/x?q=1"),
    ("http://u:p@users/x", "http://REDACTED:REDACTED@users/x"),
    ("http://u@users/x?token=t", "http://REDACTED:REDACTED@users/x?token=REDACTED"),
    ("https://s3/b/o?AWSAccessKeyId=A&Signature=S&Expires=9",
     "https://s3/b/o?AWSAccessKeyId=REDACTED&Signature=REDACTED&Expires=9"),
    ("http://users/x?code=c&state=s&sig=", "http://users/x?code=REDACTED&state=s&sig="),
    ("http://users/x?password&a=b", "http://users/x?password&a=b"),  # no value: nothing to hide
])
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(httpx.URL(url)) == expected


def test_added_keys_are_case_insensitive_and_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redact, "_keys", redact.sensitive_query_keys())
    redact.add_sensitive_query_keys("X-Session")
    assert "x-session" in redact.sensitive_query_keys()
    assert redact_url(httpx.URL("http://a/?X-SESSION=1")) == "http://a/?X-SESSION=REDACTED"
    for bad in ("", "a=b", 3):
        with pytest.raises(RedactionError, match="sensitive query key") as info:
            redact.add_sensitive_query_keys(bad)  # type: ignore[arg-type]
        assert repr(bad) in str(info.value)
