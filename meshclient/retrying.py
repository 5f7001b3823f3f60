"""tenacity strategies that retry any call under a service's meshclient budget and deadline.

A database or queue call retried with tenacity spends the same retry budget as the
service's HTTP calls, stops when the current deadline cannot fit another attempt, and
shows its retries in meshclient's events, metrics and span events:

```python
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from meshclient.retrying import record_retry, retry_if_budget, stop_at_deadline, wait_backoff

for attempt in Retrying(
        retry=retry_if_budget("orders", retry_if_exception_type(ConnectionError)),
        stop=stop_after_attempt(3) | stop_at_deadline(),
        wait=wait_backoff("orders"),
        before_sleep=record_retry("orders"),
        reraise=True):
    with attempt:
        ...  # the call
```

`retrying("orders")` / `async_retrying("orders")` build that in one step, with the
service's policy (attempts, backoff) as defaults; `wait=` takes any tenacity wait.

The budget is the process-wide one of the service (`budget_for`), with the parameters of
the service's policy in the store (or the policy defaults for a name that is not an HTTP
service): the first attempt of each call deposits, each retry withdraws (Finagle's
`RetryBudget`). The budget is asked last, after the retry condition and after the
`Retrying`'s stop, so a retry refused by anything else spends no token.

The deadline is the inbound request's (`meshclient.context.inbound`, set by the handler
decorator and the middleware), or one set with `deadline(seconds)`, the earliest wins.
HTTP calls made inside the same block are bound by it too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from collections.abc import Iterator
from typing import Any

import tenacity
from tenacity import RetryCallState
from tenacity.retry import retry_base, retry_if_exception_type
from tenacity.stop import stop_after_attempt, stop_base

from . import _events
from ._clock import CLOCK, RNG
from ._types import Clock, Rng
from .context import Inbound, inbound
from .errors import MeshError
from .policy import PolicyStore, Service, default_store
from .resilience.backoff import Backoff, as_backoff
from .resilience.budget import ServiceBudget, budget_for

__all__ = ["RetryingError", "async_retrying", "deadline", "record_retry", "retry_if_budget",
           "retrying", "stop_at_deadline", "time_left", "wait_backoff"]

_NS = 1_000_000_000


class RetryingError(MeshError, ValueError):
    """A retrying helper was given a bad argument (the message names it and its value)."""


def _service_name(service: object) -> str:
    if not isinstance(service, str) or not service:
        raise RetryingError(f"service must be a non-empty service name: {service!r}")
    return service


def _service(name: str, store: PolicyStore | None) -> Service | None:
    return (store or default_store()).current.resolved.get(name)


def _budget(name: str, store: PolicyStore | None) -> ServiceBudget:
    """The process-wide budget of `name`, under the policy in force now."""
    policy = (store or default_store()).current
    service = policy.resolved.get(name)
    retry = service.retry if service is not None else policy.defaults.retry
    return budget_for(name, retry.budget)


def _stops(retry_state: RetryCallState) -> bool:
    """Whether the `Retrying`'s stop ends the call now (an async stop is not asked)."""
    stop = getattr(retry_state.retry_object, "stop", None)
    if stop is None:
        return False
    answer = stop(retry_state)
    if inspect.isawaitable(answer):
        if inspect.iscoroutine(answer):
            answer.close()
        return False
    return bool(answer)


class retry_if_budget(retry_base):  # lower case: tenacity's naming
    """Retry when `retry` (default: any exception) says so, the `Retrying`'s stop does not
    end the call, and the service's retry budget has a token (withdrawn). The first
    attempt of each call deposits. A refusal emits `budget_exhausted` (reason `budget`)."""

    def __init__(self, service: str, retry: retry_base | None = None, *,
                 store: PolicyStore | None = None) -> None:
        self.service = _service_name(service)
        self.retry = retry if retry is not None else retry_if_exception_type()
        self.store = store

    def __call__(self, retry_state: RetryCallState) -> bool:
        stats = _budget(self.service, self.store)
        if retry_state.attempt_number == 1:
            stats.tokens.deposit()
        if not self.retry(retry_state):
            return False
        if _stops(retry_state):
            return True  # the stop ends the call: no token for a retry that will not happen
        if stats.tokens.try_withdraw():
            return True
        stats.budget_exhausted += 1
        _events.emit(_events.BUDGET_EXHAUSTED, self.service, reason="budget",
                     attempts=retry_state.attempt_number)
        return False


def time_left(clock: Clock = CLOCK) -> float | None:
    """Seconds left before the current deadline (never negative), or None without one."""
    current = inbound.get()
    if current is None or current.deadline_ns is None:
        return None
    return max(0.0, (current.deadline_ns - clock.now_ns()) / _NS)


@contextlib.contextmanager
def deadline(seconds: float, clock: Clock = CLOCK) -> Iterator[float]:
    """A deadline `seconds` from now for the block (an earlier inbound one still wins):
    `stop_at_deadline` and meshclient's HTTP calls inside the block keep to it."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not (
            seconds > 0 and seconds != float("inf")):
        raise RetryingError(f"deadline seconds must be a positive, finite number: {seconds!r}")
    at = clock.now_ns() + int(seconds * _NS)
    current = inbound.get()
    if current is None:
        value = Inbound(deadline_ns=at)
    elif current.deadline_ns is None or at < current.deadline_ns:
        value = dataclasses.replace(current, deadline_ns=at, spent=current.spent)
    else:
        value = current
    token = inbound.set(value)
    try:
        yield max(0.0, ((value.deadline_ns or at) - clock.now_ns()) / _NS)
    finally:
        inbound.reset(token)


class stop_at_deadline(stop_base):  # lower case: tenacity's naming
    """Stop when the current deadline cannot fit the coming wait plus another attempt.

    An attempt is expected to take `attempt_s` seconds if given, else the mean of this
    call's attempts so far (tenacity's own timing: time since the start, less the time
    slept, per attempt). Without a deadline it never stops (combine with `|`)."""

    def __init__(self, *, attempt_s: float | None = None, clock: Clock = CLOCK) -> None:
        if attempt_s is not None and (isinstance(attempt_s, bool) or not isinstance(
                attempt_s, (int, float)) or not 0 <= attempt_s < float("inf")):
            raise RetryingError(f"attempt_s must be a finite number of seconds >= 0: "
                                f"{attempt_s!r}")
        self.attempt_s = attempt_s
        self.clock = clock

    def __call__(self, retry_state: RetryCallState) -> bool:
        left = time_left(self.clock)
        if left is None:
            return False
        expected = self.attempt_s
        if expected is None:
            spent = retry_state.seconds_since_start or 0.0
            expected = max(0.0, spent - retry_state.idle_for) / max(1, retry_state.attempt_number)
        return left - (retry_state.upcoming_sleep or 0.0) < expected or left <= 0


class record_retry:  # lower case: tenacity's naming
    """`before_sleep`: the retry counts in the service's statistics (`meshclient status`),
    the `meshclient.retries` metric and a `meshclient.retry` span event on the current
    span, as an HTTP retry does."""

    def __init__(self, service: str, *, store: PolicyStore | None = None) -> None:
        self.service = _service_name(service)
        self.store = store

    def __call__(self, retry_state: RetryCallState) -> None:
        _budget(self.service, self.store).retries += 1
        _events.emit(_events.RETRY, self.service, attempt=retry_state.attempt_number + 1,
                     sleep_s=retry_state.upcoming_sleep)


class wait_backoff:  # lower case: tenacity's naming
    """A tenacity wait: the service's policy backoff (`retry.backoff`: exponential, full
    jitter), read when each wait is drawn so a policy refresh applies."""

    def __init__(self, service: str, *, store: PolicyStore | None = None,
                 rng: Rng = RNG) -> None:
        self.service = _service_name(service)
        self.store = store
        self.rng = rng

    def __call__(self, retry_state: RetryCallState) -> float:
        policy = (self.store or default_store()).current
        service = policy.resolved.get(self.service)
        backoff = (service.retry if service is not None else policy.defaults.retry).backoff
        return Backoff(backoff.base, backoff.max).wait(retry_state.attempt_number, self.rng)


def _arguments(service: str, retry: retry_base | None, wait: Any, stop: stop_base | None,
               store: PolicyStore | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    name = _service_name(service)
    if stop is None:
        found = _service(name, store)
        policy = (store or default_store()).current
        attempts = (found.retry if found is not None else policy.defaults.retry).attempts
        stop = stop_after_attempt(attempts) | stop_at_deadline()
    kwargs.setdefault("reraise", True)
    return {"retry": retry_if_budget(name, retry, store=store),
            "wait": wait_backoff(name, store=store) if wait is None else as_backoff(wait),
            "stop": stop, "before_sleep": record_retry(name, store=store), **kwargs}


def retrying(service: str, *, retry: retry_base | None = None, wait: Any = None,
             stop: stop_base | None = None, store: PolicyStore | None = None,
             **kwargs: Any) -> tenacity.Retrying:
    """A `tenacity.Retrying` under `service`'s budget and the current deadline: `retry`
    (default any exception) gated by `retry_if_budget`; `wait` any tenacity wait (default
    the service's policy backoff); `stop` (default the policy's attempts, or the deadline);
    `record_retry` before each sleep; `reraise=True` unless given; other keyword arguments
    go to `Retrying`."""
    return tenacity.Retrying(**_arguments(service, retry, wait, stop, store, kwargs))


def async_retrying(service: str, *, retry: retry_base | None = None, wait: Any = None,
                   stop: stop_base | None = None, store: PolicyStore | None = None,
                   **kwargs: Any) -> tenacity.AsyncRetrying:
    """`retrying` for coroutines (`tenacity.AsyncRetrying`)."""
    return tenacity.AsyncRetrying(**_arguments(service, retry, wait, stop, store, kwargs))
