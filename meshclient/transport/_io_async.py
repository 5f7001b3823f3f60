"""The operations the async shell does its own way (the sync shell's are `_io_sync.py`,
same names): sleeping, waiting for discovery, racing a hedge, closing a response that must
be closed even when the task is cancelled, blocking work, closing the mirror sender."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import anyio.to_thread
import httpx

from .._core.actions import Hedge, HedgeOutcome, Outcome, Send
from ..discovery.endpoint import EndpointWaiter
from ._lag import watch_loop
from ._mirror import MirrorSender

#: A request on this event loop: keep its stall monitor running (`_lag.py`).
watch_lag = watch_loop


async def sleep(seconds: float) -> None:
    await anyio.sleep(seconds)


async def wait_ready(waiter: EndpointWaiter, timeout_s: float) -> None:
    """A service's first answer, awaited without a thread: polled with a short,
    growing sleep (1 ms to 50 ms), so the deadline bounds it exactly and a burst of cold
    requests does not fill the worker-thread pool. Only a service's first requests wait."""
    waiter.wait(0)  # starts the cache if needed; never blocks
    delay = 0.001
    with anyio.move_on_after(timeout_s):
        while not waiter.ready:
            await anyio.sleep(delay)
            delay = min(delay * 2, 0.05)


async def close_shielded(response: httpx.Response) -> None:
    """Close `response` (free its connection), even while the task is being cancelled."""
    with anyio.CancelScope(shield=True):
        await response.aclose()


async def run_blocking(work: Callable[[], None]) -> None:
    """`work()`, which may block (joining threads), off the event loop."""
    await anyio.to_thread.run_sync(work)


async def close_mirrors(mirrors: MirrorSender) -> None:
    await mirrors.aclose()


class Racer:
    """Races a hedge's two attempts (`race`): tasks in a task group; the loser is
    cancelled."""

    async def race(self, hedge: Hedge,
                   send: Callable[[Send], Awaitable[Outcome]]) -> HedgeOutcome:
        """Send the primary and, after `delay_s`, the secondary; cancel the loser."""
        results: list[Outcome | None] = [None, None]
        order: list[int] = []
        finished = [anyio.Event(), anyio.Event()]
        changed = anyio.Event()

        async def run(i: int, attempt: Send) -> None:
            results[i] = await send(attempt)
            order.append(i)
            finished[i].set()
            changed.set()

        winner: int | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(run, 0, hedge.primary)
            with anyio.move_on_after(hedge.delay_s):
                await finished[0].wait()
            if finished[0].is_set():
                return HedgeOutcome(0, results[0] or Outcome(), None, False)
            hedge.on_secondary()
            tg.start_soon(run, 1, hedge.secondary)
            while winner is None:
                await changed.wait()
                changed = anyio.Event()
                for i in list(order):
                    outcome = results[i]
                    if outcome is not None and hedge.good(outcome):
                        winner = i
                        break
                if winner is None and len(order) == 2:
                    winner = order[-1]  # neither good: report the later one
            tg.cancel_scope.cancel()
        assert winner is not None
        loser = 1 - winner
        other = results[loser]
        if other is not None and other.response is not None:
            await other.response.aclose()
        won = results[winner]
        assert won is not None
        return HedgeOutcome(winner, won, other, True)

    async def aclose(self) -> None:
        """Nothing to release: a cancelled task ends with its task group."""

    def __repr__(self) -> str:
        return "<Racer tasks>"
