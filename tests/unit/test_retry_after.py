"""Retry-After: delay-seconds or HTTP-date, capped."""

from __future__ import annotations

import email.utils

import pytest

from meshclient.resilience.retry_after import MAX_RETRY_AFTER_S, parse_retry_after


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
