"""Exponential backoff with full jitter (tenacity's window, a seeded RNG)."""

from __future__ import annotations

import pytest

from meshclient.resilience.backoff import Backoff, BackoffError
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


def test_tenacity_waits_are_backoffs_and_a_backoff_is_a_tenacity_wait() -> None:
    import tenacity
    from tenacity import wait_chain, wait_exponential, wait_fixed, wait_incrementing

    from meshclient.resilience.backoff import WaitBackoff, as_backoff

    rng = SeededRng(3)
    assert [as_backoff(wait_exponential(multiplier=0.1, max=0.5)).wait(n, rng)
            for n in (1, 2, 3, 4, 5)] == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])
    assert [as_backoff(wait_incrementing(0.1, 0.1)).wait(n, rng) for n in (1, 3)] == \
        pytest.approx([0.1, 0.3])
    chain = as_backoff(wait_chain(wait_fixed(0.01), wait_fixed(0.2)))
    assert [chain.wait(n, rng) for n in (1, 2, 3)] == [0.01, 0.2, 0.2]
    jitter = as_backoff(wait_fixed(0.2) + tenacity.wait_random(0, 0.05))
    assert 0.2 <= jitter.wait(2, rng) <= 0.25
    b = Backoff(0.025, 0.25)
    assert as_backoff(b) is b
    state = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
    state.attempt_number = 3
    assert 0 <= b(state) < 0.1  # a Backoff used as tenacity's `wait=`
    assert as_backoff(wait_fixed(0.5))(state) == 0.5
    with pytest.raises(BackoffError, match="42"):
        WaitBackoff(42)
    with pytest.raises(BackoffError, match="-1"):
        as_backoff(lambda _state: -1).wait(1, rng)
    with pytest.raises(BackoffError, match="nan"):
        as_backoff(lambda _state: float("nan")).wait(1, rng)
