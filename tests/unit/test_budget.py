"""The retry budget (Finagle's TokenRetryBudget) on a fake clock."""

from __future__ import annotations

import pytest

from meshclient.policy._model import BudgetPolicy
from meshclient.resilience.budget import (
    EMPTY,
    INFINITE,
    BudgetError,
    TokenRetryBudget,
    budget_for,
    make_budget,
    reset_budgets,
)
from meshclient.testing import FakeClock


def test_integer_scaling_and_reserve() -> None:
    b = make_budget(10, 10, 0.2, FakeClock())
    assert isinstance(b, TokenRetryBudget)
    assert (b.deposit_amount, b.withdrawal_amount, b.reserve) == (1000, 5000, 500_000)
    assert b.balance == 100  # min_per_second x ttl


def test_ratio_of_requests_plus_floor() -> None:
    clock = FakeClock()
    b = make_budget(10, 0, 0.2, clock)
    assert not b.try_withdraw()
    for _ in range(10):
        b.deposit()
    assert b.balance == 2
    assert b.try_withdraw() and b.try_withdraw() and not b.try_withdraw()


def test_deposits_expire_after_ttl() -> None:
    clock = FakeClock()
    b = make_budget(1, 0, 0.5, clock)
    for _ in range(4):
        b.deposit()
    assert b.balance == 2
    clock.advance(1.01)
    assert b.balance == 0


def test_steady_outage_converges_to_ratio_plus_floor_over_rate() -> None:
    clock = FakeClock()
    b = make_budget(10, 10, 0.2, clock)
    rate, seconds, retries, requests = 100, 60, 0, 0
    for _ in range(rate * seconds):
        clock.advance(1 / rate)
        b.deposit()
        requests += 1
        while b.try_withdraw():  # a retry storm: every failure retried while allowed
            retries += 1
            break
    # 0.2 + 10/100 per request, plus the one-off reserve of 100 retries.
    assert retries / requests == pytest.approx(0.3 + 100 / requests, abs=0.02)


def test_empty_and_infinite() -> None:
    assert make_budget(10, 0, 0, FakeClock()) is EMPTY
    assert not EMPTY.try_withdraw() and EMPTY.balance == 0
    assert INFINITE.try_withdraw() and INFINITE.balance == 100


@pytest.mark.parametrize(("args", "field"), [((0.5, 1, 0.2), "ttl"), ((61, 1, 0.2), "ttl"),
                                             ((10, -1, 0.2), "min_per_second"),
                                             ((10, 1, 1001), "ratio")])
def test_validation_names_the_value(args: tuple[float, float, float], field: str) -> None:
    value = args[("ttl", "min_per_second", "ratio").index(field)]
    with pytest.raises(BudgetError, match=rf"retry\.budget\.{field}.*{value!r}"):
        make_budget(*args)


def test_one_budget_per_service_per_process() -> None:
    reset_budgets()
    a = budget_for("users", BudgetPolicy())
    assert budget_for("users", BudgetPolicy()) is a
    assert budget_for("orders", BudgetPolicy()) is not a
    assert budget_for("users", BudgetPolicy(ratio=0.5)) is not a  # policy changed
    reset_budgets()
