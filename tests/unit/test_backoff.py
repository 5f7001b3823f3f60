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
