"""Which outcomes may be retried: error kinds, methods, Idempotency-Key, statuses."""

from __future__ import annotations

import httpx

from meshclient.policy._model import RetryPolicy
from meshclient.resilience.classify import (
    CONNECT_ERROR,
    OTHER,
    POOL_TIMEOUT,
    READ_ERROR,
    RESET,
    TIMEOUT,
    RetryRules,
    error_kind,
)


def test_error_kinds() -> None:
    assert error_kind(httpx.ConnectError("refused")) == CONNECT_ERROR
    assert error_kind(httpx.ConnectTimeout("t")) == CONNECT_ERROR
    assert error_kind(httpx.PoolTimeout("t")) == POOL_TIMEOUT  # the caller's pool, not the peer
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
    assert all(wide.status_listed(s) for s in range(500, 600))
    assert not wide.status_listed(499) and not wide.status_listed(600)
    gw = RetryRules.from_policy(RetryPolicy(on=("gateway-error",)))
    assert gw.status_listed(504) and not gw.status_listed(500)


def test_a_pool_timeout_is_retried_like_a_connect_error_for_any_method() -> None:
    post = httpx.Request("POST", "http://users/")
    assert RetryRules.from_policy(RetryPolicy()).error_retryable(POOL_TIMEOUT, post)
    assert not RetryRules.from_policy(RetryPolicy(on=("503",))).error_retryable(POOL_TIMEOUT,
                                                                                 post)


def test_replayable_is_the_one_replay_rule() -> None:
    rules = RetryRules.from_policy(RetryPolicy())
    assert rules.replayable(httpx.Request("GET", "http://users/"))
    assert not rules.replayable(httpx.Request("POST", "http://users/"))
    assert rules.replayable(httpx.Request("POST", "http://users/",
                                          headers={"Idempotency-Key": "k"}))
