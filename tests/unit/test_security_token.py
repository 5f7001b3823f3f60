"""The token-answer parser: any bytes give a `Token` or `TokenAnswerError`, nothing else."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshclient.security.token import (
    MAX_EXPIRES_S,
    MIN_EXPIRES_S,
    RETRY_MAX_S,
    TokenAnswerError,
    expires_in_s,
    parse_answer,
    retry_delay_s,
)
from meshclient.testing import SeededRng

NOW = 10**12
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3),
    max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_a_token_or_the_one_error(body: bytes) -> None:
    try:
        token = parse_answer(200, body, NOW, 30.0)
    except TokenAnswerError:
        return
    assert NOW < token.refresh_ns <= token.expires_ns


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_expires_in_gives_a_lifetime_or_the_one_error(value: object) -> None:
    body = json.dumps({"access_token": "t", "expires_in": value}).encode()
    try:
        token = parse_answer(200, body, NOW, 30.0)
    except TokenAnswerError as exc:
        assert "expires_in" in str(exc)
        return
    seconds = (token.expires_ns - NOW) / 1e9
    assert MIN_EXPIRES_S - 1e-6 <= seconds <= MAX_EXPIRES_S + 1
    assert token.header_value == "Bearer t"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1, 0, "NaN", "inf", "-3",
                                   "soon", True, 10**400, [], {}, MAX_EXPIRES_S * 2,
                                   1.87e-198, 0.05])
def test_bad_expires_in_is_named(value: object) -> None:
    with pytest.raises(TokenAnswerError, match="expires_in must be"):
        expires_in_s(value)


def test_good_expires_in() -> None:
    assert expires_in_s(None) == 300.0
    assert expires_in_s(3600) == 3600.0
    assert expires_in_s(" 12.5 ") == 12.5


def test_token_repr_hides_the_token() -> None:
    token = parse_answer(200, b'{"access_token": "secret-tok", "token_type": "mac"}', NOW, 1)
    assert token.header_value == "mac secret-tok"
    assert "secret-tok" not in repr(token)


@given(st.integers(min_value=1, max_value=10_000), st.integers(min_value=0, max_value=2**32))
def test_retry_delay_is_jittered_and_bounded(failures: int, seed: int) -> None:
    delay = retry_delay_s(failures, SeededRng(seed))
    window = min(2.0 ** min(failures - 1, 64), RETRY_MAX_S)
    assert window / 2 <= delay < window and math.isfinite(delay)
