"""Backoff, Retry-After, classification and deadline arithmetic: pure functions."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from meshclient.policy._model import RetryPolicy, TimeoutPolicy
from meshclient.resilience.backoff import Backoff, BackoffError
from meshclient.resilience.classify import (
    CONNECT_ERROR,
    OTHER,
    READ_ERROR,
    RESET,
    TIMEOUT,
    RetryRules,
    error_kind,
)
from meshclient.resilience.deadline import Deadline, TimeoutOverrideError, attempt_timeout
from meshclient.resilience.retry_after import MAX_RETRY_AFTER_S, parse_retry_after
from meshclient.testing import SeededRng


def test_backoff_window_doubles_to_max_with_full_jitter() -> None:
    b = Backoff(0.025, 0.25)
    assert [b.window(n) for n in (1, 2, 3, 4, 5, 9)] == [0.025, 0.05, 0.1, 0.2, 0.25, 0.25]
    rng = SeededRng(7)
    draws = [b.wait(3, rng) for _ in range(2000)]
    assert 0 <= min(draws) < 0.005 and 0.095 < max(draws) < 0.1
    assert sum(draws) / len(draws) == pytest.approx(0.05, rel=0.1)
    assert [Backoff(0.025, 0.25).wait(2, SeededRng(1)) for _ in range(2)] == [
        Backoff(0.025, 0.25).wait(2, SeededRng(1))] * 2
    with pytest.raises(BackoffError, match=r"0\.5"):
        Backoff(0.5, 0.1)


def test_retry_after_seconds_date_cap_and_junk() -> None:
    assert parse_retry_after("3", None) == 3.0
    assert parse_retry_after("100000", None) == MAX_RETRY_AFTER_S
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 7, usegmt=True)
    assert parse_retry_after(date, now) == pytest.approx(7)
    assert parse_retry_after(email.utils.formatdate(now - 9, usegmt=True), now) == 0
    assert parse_retry_after(email.utils.formatdate(now + 9999, usegmt=True), now) == 300
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-1", now) is None


def test_error_kinds() -> None:
    assert error_kind(httpx.ConnectError("refused")) == CONNECT_ERROR
    assert error_kind(httpx.ConnectTimeout("t")) == CONNECT_ERROR
    assert error_kind(httpx.PoolTimeout("t")) == CONNECT_ERROR
    assert error_kind(httpx.ReadTimeout("t")) == TIMEOUT
    assert error_kind(httpx.RemoteProtocolError("Server disconnected")) == RESET
    assert error_kind(httpx.ReadError("")) == RESET
    assert error_kind(httpx.WriteError("broken pipe")) == READ_ERROR
    assert error_kind(httpx.UnsupportedProtocol("ftp")) == OTHER


def test_rules_methods_idempotency_key_statuses() -> None:
    rules = RetryRules.from_policy(RetryPolicy())
    get = httpx.Request("GET", "http://users/")
    post = httpx.Request("POST", "http://users/")
    keyed = httpx.Request("POST", "http://users/", headers={"Idempotency-Key": "k"})
    assert rules.error_retryable(CONNECT_ERROR, post)  # never reached the server
    assert rules.error_retryable(RESET, get) and not rules.error_retryable(RESET, post)
    assert rules.error_retryable(RESET, keyed)
    assert not rules.error_retryable(TIMEOUT, get)  # not in the default `on`
    assert rules.status_retryable(503, get) and not rules.status_retryable(500, get)
    assert not rules.status_retryable(503, post) and rules.status_retryable(503, keyed)
    wide = RetryRules.from_policy(RetryPolicy(on=("5xx", "read-error")))
    assert wide.status_retryable(500, get) and wide.error_retryable(RESET, get)
    gw = RetryRules.from_policy(RetryPolicy(on=("gateway-error",)))
    assert gw.status_listed(504) and not gw.status_listed(500)


def test_deadline_sources_and_attempt_bounds() -> None:
    now = 10**12
    d = Deadline.start(TimeoutPolicy(total=2.0, per_try=0.5), {}, now, None)
    assert d.remaining_ns(now) == 2 * 10**9 and d.header_ms(now) == "2000"
    assert d.attempt_ns(now) == (5 * 10**8, False)
    assert d.attempt_ns(now + 17 * 10**8) == (3 * 10**8, True)  # capped by what remains
    assert d.header_ms(now + 3 * 10**9) == "0"
    inherited = Deadline.start(TimeoutPolicy(), {}, now, now + 10**9)
    assert inherited.inherited and inherited.remaining_ns(now) == 10**9
    over = Deadline.start(TimeoutPolicy(), {"meshclient.timeout": {"total": 1, "per_try": 0.1}},
                          now, None)
    assert over.remaining_ns(now) == 10**9 and over.per_try_ns == 10**8
    with pytest.raises(TimeoutOverrideError, match="'soon'"):
        Deadline.start(TimeoutPolicy(), {"meshclient.timeout": "soon"}, now, None)
    with pytest.raises(TimeoutOverrideError, match="per_retry"):
        Deadline.start(TimeoutPolicy(), {"meshclient.timeout": {"per_retry": 1}}, now, None)


def test_attempt_timeout_never_exceeds_the_callers() -> None:
    caller = {"connect": 5.0, "read": 0.1, "write": None, "pool": 5.0}
    assert attempt_timeout(caller, 1.0) == {"connect": 1.0, "read": 0.1, "write": 1.0,
                                            "pool": 1.0}
    assert attempt_timeout(None, 2.0) == dict.fromkeys(("connect", "read", "write", "pool"), 2.0)
