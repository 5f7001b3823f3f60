"""Hedged requests (gRPC's hedging policy, paid from the retry budget): when to send the
second attempt, where, what counts as a good answer, and the accounting of both attempts
afterwards. Pure; the shells race the two `Send`s."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from ..resilience.deadline import Deadline
from .actions import HedgeOutcome, Outcome, Send
from .attempt import abandon, observe, pick_and_guard, prepare

if TYPE_CHECKING:
    from .._runtime import ServiceRuntime
    from ..balance import EndpointState

_NS = 1_000_000_000


def hedge_delay_s(runtime: ServiceRuntime) -> float:
    """The fixed delay, or the configured percentile of observed latency (the fixed delay
    is never None when no percentile is set: the policy requires one of them)."""
    hedge = runtime.service.retry.hedge
    assert hedge is not None
    if hedge.delay is not None:
        return hedge.delay
    assert hedge.percentile is not None
    value = runtime.resilience.latency.percentile_ns(hedge.percentile)
    return value / _NS if value is not None else float("inf")


def plan_hedge(request: httpx.Request, runtime: ServiceRuntime, tried: set[str],
                deadline: Deadline, now: int) -> tuple[EndpointState, int, Send] | None:
    """A second endpoint for a hedge, when the budget has a token and the percentile is
    known. The token is taken only if the hedge is actually sent."""
    if runtime.resilience.budget.tokens.balance < 1 or hedge_delay_s(runtime) == float("inf"):
        return None
    chosen = pick_and_guard(runtime, tried, now, deadline.at_ns)
    if not isinstance(chosen, tuple) or chosen[0].endpoint.key in tried:
        if isinstance(chosen, tuple) and chosen[0].breaker is not None:
            chosen[0].breaker.release(chosen[1])
        return None
    state, ticket = chosen
    send, _ = prepare(request, runtime, state, 2, deadline, now)
    return state, ticket, send


class Secondary:
    """The hedge's second attempt: its endpoint's measurement starts when the shell sends
    it (`begin`, the `Hedge.on_secondary` callback), on the runtime's clock."""

    __slots__ = ("runtime", "start", "state")

    def __init__(self, runtime: ServiceRuntime, state: EndpointState) -> None:
        self.runtime, self.state = runtime, state
        self.start: int | None = None

    def __repr__(self) -> str:
        return (f"<Secondary {self.runtime.service.name} endpoint={self.state.endpoint.key} "
                f"{'sent' if self.start is not None else 'waiting'}>")

    def begin(self) -> None:
        if self.start is None:
            self.start = self.state.begin(self.runtime.clock.now_ns())


def good_outcome(runtime: ServiceRuntime) -> Callable[[Outcome], bool]:
    def good(outcome: Outcome) -> bool:
        response = outcome.response
        return response is not None and response.status_code < 500

    return good


def settle_hedge(runtime: ServiceRuntime, reply: HedgeOutcome,
                  first: tuple[EndpointState, int, int], second: tuple[Secondary, int],
                  ) -> tuple[Outcome, EndpointState, bool, int]:
    """Account for both attempts of a hedge; returns the winner's (outcome, state, ok,
    start). The secondary's measurement began when it was sent (`Secondary.begin`)."""
    now = runtime.clock.now_ns()
    state1, ticket1, start1 = first
    secondary, ticket2 = second
    state2 = secondary.state
    if not reply.hedged or secondary.start is None:
        if state2.breaker is not None:
            state2.breaker.release(ticket2)
        ok = observe(runtime, state1, ticket1, start1, reply.outcome.response,
                     reply.outcome.error, now)
        return reply.outcome, state1, ok, start1
    stats = runtime.resilience.budget
    stats.hedges += 1
    stats.tokens.try_withdraw()  # the hedge is paid from the budget
    start2 = secondary.start
    outcomes = (reply.outcome, reply.other) if reply.winner == 0 else (reply.other,
                                                                        reply.outcome)
    oks = []
    for (state, ticket, start), outcome in zip(((state1, ticket1, start1),
                                                 (state2, ticket2, start2)), outcomes, strict=True):
        if outcome is None:
            abandon(state, ticket, start, now)
            oks.append(True)
        else:
            oks.append(observe(runtime, state, ticket, start, outcome.response, outcome.error,
                               now))
            if outcome is not reply.outcome and outcome.response is not None:
                state.end(start, now, oks[-1])  # the loser's response is already closed
    if reply.winner == 0:
        return reply.outcome, state1, oks[0], start1
    return reply.outcome, state2, oks[1], start2
