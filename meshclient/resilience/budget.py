"""The retry budget, as Finagle's `RetryBudget` and Linkerd define it.

Every request deposits; a retry withdraws. Retries stay within `ratio` of the requests made
over the last `ttl`, plus a reserve of `min_per_second * ttl` retries, so a client that has
just started (or sends little) can still retry. Amounts are integers scaled by 1000, as in
Finagle, so a ratio below 1 needs no floating point in the bucket:

    deposit    = 1000                         (0 when ratio == 0)
    withdrawal = int(1000 / ratio)            (1 when ratio == 0)
    reserve    = min_per_second * ttl * withdrawal
    balance    = (sum of deposits and withdrawals in the last ttl + reserve) // withdrawal

A withdrawal succeeds only while the balance covers it. Deposits and withdrawals expire
after `ttl` (a ring of 10 time slices, as Finagle's leaky token bucket). Under a full outage
at a steady offered rate R, retries per request tend to `ratio + min_per_second / R`.

`EMPTY` never allows a retry; `INFINITE` always does. One budget per service for the whole
process: `budget_for(service, policy)` returns it from a process-wide map keyed by service
name, so every client, both transports and every `PolicyStore` share it.
"""

from __future__ import annotations

import threading
from typing import Protocol

from .._clock import CLOCK
from .._types import Clock
from ..errors import PolicyError
from ..policy import BudgetPolicy

SCALE = 1000
SLICES = 10


class BudgetError(PolicyError):
    """Budget parameters out of range (the message names the parameter and value)."""


class RetryBudget(Protocol):
    """Finagle's three methods."""

    def deposit(self, now_ns: int | None = None) -> None:
        """One request: its share of the retry allowance (`now_ns`: the caller's clock
        reading, if it has one)."""

    def try_withdraw(self) -> bool: ...

    @property
    def balance(self) -> int: ...


class _Empty:
    def deposit(self, now_ns: int | None = None) -> None:
        pass

    def try_withdraw(self) -> bool:
        return False

    @property
    def balance(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "EMPTY"


class _Infinite:
    def deposit(self, now_ns: int | None = None) -> None:
        pass

    def try_withdraw(self) -> bool:
        return True

    @property
    def balance(self) -> int:
        return 100

    def __repr__(self) -> str:
        return "INFINITE"


EMPTY: RetryBudget = _Empty()
INFINITE: RetryBudget = _Infinite()


class TokenRetryBudget:
    """A leaky token bucket over `ttl_s` in `SLICES` slices; thread-safe (one small lock)."""

    __slots__ = ("_clock", "_counts", "_epochs", "_lock", "_slice_ns", "deposit_amount",
                 "reserve", "withdrawal_amount")

    def __init__(self, ttl_s: float, deposit_amount: int, withdrawal_amount: int, reserve: int,
                 clock: Clock) -> None:
        self.deposit_amount = deposit_amount
        self.withdrawal_amount = withdrawal_amount
        self.reserve = reserve
        self._clock = clock
        self._slice_ns = max(1, int(ttl_s * 1e9) // SLICES)
        self._counts = [0] * SLICES
        self._epochs = [-1] * SLICES
        self._lock = threading.Lock()

    def _sum(self, epoch: int) -> int:
        """Caller holds the lock. Sum of the slices still inside the window."""
        total = 0
        for i in range(SLICES):
            if epoch - self._epochs[i] < SLICES:
                total += self._counts[i]
        return total

    def _add(self, epoch: int, amount: int) -> None:
        i = epoch % SLICES
        if self._epochs[i] != epoch:
            self._epochs[i] = epoch
            self._counts[i] = 0
        self._counts[i] += amount

    def deposit(self, now_ns: int | None = None) -> None:
        amount = self.deposit_amount
        if not amount:
            return
        epoch = (self._clock.now_ns() if now_ns is None else now_ns) // self._slice_ns
        i = epoch % SLICES
        with self._lock:  # `_add`, inlined: this runs on every request
            if self._epochs[i] != epoch:
                self._epochs[i] = epoch
                self._counts[i] = 0
            self._counts[i] += amount

    def try_withdraw(self) -> bool:
        epoch = self._clock.now_ns() // self._slice_ns
        with self._lock:
            if self._sum(epoch) + self.reserve < self.withdrawal_amount:
                return False
            self._add(epoch, -self.withdrawal_amount)
            return True

    @property
    def balance(self) -> int:
        epoch = self._clock.now_ns() // self._slice_ns
        with self._lock:
            return (self._sum(epoch) + self.reserve) // self.withdrawal_amount

    def __repr__(self) -> str:
        return (f"TokenRetryBudget(deposit={self.deposit_amount}, "
                f"withdraw={self.withdrawal_amount}, balance={self.balance})")


def make_budget(ttl_s: float, min_per_second: float, ratio: float,
                clock: Clock = CLOCK) -> RetryBudget:
    """Finagle's `RetryBudget.apply`, validated with the bad value in the message."""
    if not 1 <= ttl_s <= 60:
        raise BudgetError(f"retry.budget.ttl must be between 1s and 60s: {ttl_s!r}")
    if min_per_second < 0:
        raise BudgetError(f"retry.budget.min_per_second must be non-negative: "
                          f"{min_per_second!r}")
    if not 0 <= ratio <= SCALE:
        raise BudgetError(f"retry.budget.ratio must be between 0 and {SCALE}: {ratio!r}")
    if min_per_second == 0 and ratio == 0:
        return EMPTY
    deposit = SCALE if ratio else 0
    withdrawal = int(SCALE / ratio) if ratio else 1
    reserve = int(min_per_second * ttl_s * withdrawal)
    return TokenRetryBudget(ttl_s, deposit, withdrawal, reserve, clock)


class ServiceBudget:
    """A service's budget plus the counters the runtime snapshot shows."""

    __slots__ = ("attempts_exhausted", "budget_exhausted", "hedges", "policy", "retries",
                 "tokens")

    def __init__(self, policy: BudgetPolicy, clock: Clock) -> None:
        self.policy = policy
        self.tokens = make_budget(policy.ttl, policy.min_per_second, policy.ratio, clock)
        # Counters: `+= 1` on an int attribute can lose an increment under free threading;
        # they are statistics, not decisions, so that is acceptable.
        self.retries = 0
        self.hedges = 0
        self.budget_exhausted = 0
        self.attempts_exhausted = 0

    def snapshot(self) -> dict[str, int]:
        return {"budget_balance": self.tokens.balance, "retries": self.retries,
                "hedges": self.hedges, "budget_exhausted": self.budget_exhausted,
                "attempts_exhausted": self.attempts_exhausted}

    def __repr__(self) -> str:
        return (f"<ServiceBudget balance={self.tokens.balance} retries={self.retries} "
                f"hedges={self.hedges} budget_exhausted={self.budget_exhausted} "
                f"attempts_exhausted={self.attempts_exhausted}>")


_budgets: dict[str, ServiceBudget] = {}
_lock = threading.Lock()


def budget_for(service: str, policy: BudgetPolicy, clock: Clock = CLOCK) -> ServiceBudget:
    """The process-wide budget of `service`; rebuilt (balance restarts) only when the
    service's budget policy changes. `clock` is used when the budget is created (the
    registry's clock; tests and simulations inject a fake one)."""
    current = _budgets.get(service)
    if current is not None and current.policy == policy:
        return current
    with _lock:
        current = _budgets.get(service)
        if current is None or current.policy != policy:
            current = _budgets[service] = ServiceBudget(policy, clock)
        return current


def reset_budgets() -> None:
    """Forget every budget (tests; a process never needs this)."""
    with _lock:
        _budgets.clear()
