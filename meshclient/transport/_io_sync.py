"""The operations the sync shell does its own way (the async shell's are `_io_async.py`,
same names): sleeping, waiting for discovery, racing a hedge on threads, closing a
response, blocking work, the mirror sender."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import httpx

from .._core.actions import Hedge, HedgeOutcome, Outcome, Send
from ..discovery.endpoint import EndpointWaiter
from ._lag import watch_thread
from ._mirror import MirrorSender

#: A request from a blocking caller: keep the stall monitor thread running (`_lag.py`).
watch_lag = watch_thread

#: Most threads the sync shell uses for hedged requests (created on first use, on demand).
HEDGE_THREADS = 32


def sleep(seconds: float) -> None:
    time.sleep(seconds)


def wait_ready(waiter: EndpointWaiter, timeout_s: float) -> None:
    """A service's first answer, waited for (bounded by `timeout_s`)."""
    waiter.wait(timeout_s)


def close_shielded(response: httpx.Response) -> None:
    """Close `response` (free its connection); a blocking close is not interrupted."""
    response.close()


def run_blocking(work: Callable[[], None]) -> None:
    work()


def close_mirrors(mirrors: MirrorSender) -> None:
    """Stop the mirror sender threads (the join is bounded; waiting copies are dropped)."""
    mirrors.close()


class Racer:
    """Races a hedge's two attempts (`race`) on a small thread pool, made on first use. A
    blocking call cannot be cancelled: the loser is abandoned and its response closed when
    it arrives."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def race(self, hedge: Hedge, send: Callable[[Send], Outcome]) -> HedgeOutcome:
        """Send the primary and, after `delay_s`, the secondary; abandon the loser."""
        with self._lock:
            if self._pool is None:
                # Threads start on demand; abandoned losers keep theirs until they end
                # (bounded by the attempt's timeout), so the cap leaves room for them.
                self._pool = ThreadPoolExecutor(HEDGE_THREADS,
                                                thread_name_prefix="meshclient-hedge")
            pool = self._pool
        first = pool.submit(send, hedge.primary)
        done, _ = wait([first], timeout=hedge.delay_s)
        if done:
            return HedgeOutcome(0, first.result(), None, False)
        hedge.on_secondary()
        futures = [first, pool.submit(send, hedge.secondary)]
        pending = set(futures)
        finished: list[int] = []
        winner: int | None = None
        while winner is None:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            finished += sorted(futures.index(f) for f in done)
            for i in finished:
                if hedge.good(futures[i].result()):
                    winner = i
                    break
            if winner is None and not pending:
                winner = finished[-1]  # neither good: report the later one
        loser = futures[1 - winner]
        other = None
        if loser.done():
            other = loser.result()
            if other.response is not None:
                other.response.close()
        else:
            loser.add_done_callback(_close_abandoned)
        return HedgeOutcome(winner, futures[winner].result(), other, True)

    def close(self) -> None:
        """Stop the pool (waiting for its threads; queued attempts are cancelled)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __repr__(self) -> str:
        return f"<Racer threads={'started' if self._pool is not None else 'none'}>"


def _close_abandoned(future: Future[Outcome]) -> None:
    if future.cancelled():
        return
    response = future.result().response
    if response is not None:
        response.close()
