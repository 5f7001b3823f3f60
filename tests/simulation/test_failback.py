"""Fail-back with the default policy, on a fake clock: the real balancer, outlier detector
and breakers, driven through the flow's own pick/guard/observe steps at a fixed rate. An
endpoint healthy again must carry at least half its fair share within 10 s; a flapping
one must stay (mostly) out; a new endpoint gets its first request at once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import httpx

from meshclient._core.attempt import observe, pick_and_guard
from meshclient._runtime import ServiceRuntime
from meshclient.policy import Policy
from meshclient.testing import FakeClock, SeededRng

KEYS = ("127.0.0.2:80", "127.0.0.3:80", "127.0.0.4:80")
Health = Callable[[str, float], bool]
_REQUEST = httpx.Request("GET", "http://users/")


def runtime(clock: FakeClock, seed: int, keys: tuple[str, ...] = KEYS,
            **sections: object) -> ServiceRuntime:
    policy = Policy.from_dict({"services": {"users": {"endpoints": list(keys), **sections}}})
    return ServiceRuntime(policy.resolved["users"], clock, SeededRng(seed))


def drive(rt: ServiceRuntime, clock: FakeClock, healthy: Health, seconds: float,
          rate: float = 10.0, t0: float = 0.0) -> list[tuple[float, str | None, bool]]:
    """One request every 1/rate s, 0.5-1.5 ms each (answers 200 or, when unhealthy, 503):
    (time, endpoint or None when refused, succeeded)."""
    jitter = SeededRng(99)
    log = []
    for i in range(int(seconds * rate)):
        t = t0 + i / rate
        if t > clock.now_ns() / 1e9:
            clock.advance(t - clock.now_ns() / 1e9)
        now = clock.now_ns()
        chosen = pick_and_guard(rt, set(), now)
        if not isinstance(chosen, tuple):
            log.append((t, None, False))
            continue
        state, ticket = chosen
        start = state.begin(now)
        clock.advance(0.0005 + 0.001 * jitter.random())
        ok = healthy(state.key, t)
        response = httpx.Response(200 if ok else 503, request=_REQUEST)
        done = clock.now_ns()
        good = observe(rt, state, ticket, start, response, None, done)
        state.end(start, done, good)  # the body closes
        log.append((t, state.key, ok))
    return log


def share(log: list[tuple[float, str | None, bool]], key: str, since: float,
          until: float) -> float:
    window = [e for e in log if since <= e[0] < until]
    return Counter(e[1] for e in window)[key] / max(1, len(window))


def served(log: list[tuple[float, str | None, bool]], since: float, until: float) -> float:
    window = [e for e in log if since <= e[0] < until]
    return sum(e[2] for e in window) / max(1, len(window))


def test_an_endpoint_down_for_5s_carries_its_share_within_10s_of_recovering() -> None:
    for seed in range(5):
        clock = FakeClock(start_ns=0)
        rt = runtime(clock, seed)
        bad = KEYS[0]
        log = drive(rt, clock, lambda key, t, bad=bad: key != bad or not 10 <= t < 15, 30)
        assert share(log, bad, 11, 15) < 0.1, seed  # kept out while it fails
        assert share(log, bad, 18, 25) >= 1 / 6, (seed, share(log, bad, 18, 25))


def test_an_endpoint_avoided_for_a_failure_is_probed_again_within_seconds() -> None:
    """One slow answer and then a failure (as on a busy machine): its estimate is several
    times its peers' and it is avoided before it could be ejected. Waiting for that
    estimate to decay took about 20 s; the probe after a failure brings it back within a
    few seconds of its recovery."""
    for seed in range(5):
        clock = FakeClock(start_ns=0)
        rt = runtime(clock, seed)
        drive(rt, clock, lambda key, t: True, 10)
        bad = next(s for s in rt.balancer.states() if s.key == KEYS[0])
        for rtt, ok in ((0.004, True), (0.004, False)):
            start = bad.begin(clock.now_ns())
            clock.advance(rtt)
            bad.end(start, clock.now_ns(), ok)
        log = drive(rt, clock, lambda key, t: True, 15, t0=10.1)
        assert share(log, KEYS[0], 15, 20) >= 1 / 6, (seed, share(log, KEYS[0], 15, 20))


def test_a_total_outage_ends_when_the_endpoints_recover() -> None:
    """Breakers open and the balancer enters panic mode; panic mode sends through the open
    breakers and ejections, so the first answers after the outage close them."""
    for seed in range(5):
        clock = FakeClock(start_ns=0)
        rt = runtime(clock, seed)
        log = drive(rt, clock, lambda key, t: not 10 <= t < 15, 30, rate=40)
        assert served(log, 16, 25) > 0.95, (seed, served(log, 15, 25))
        for key in KEYS:
            assert share(log, key, 20, 25) >= 1 / 6, (seed, key)


def test_a_flapping_endpoint_is_kept_out() -> None:
    """Failing 2 s of every 4: each return is followed by a longer ejection (the backoff
    restarts only after `max_ejection` in service), so its share falls well below fair."""
    for seed in range(5):
        clock = FakeClock(start_ns=0)
        rt = runtime(clock, seed)
        flappy = KEYS[0]
        log = drive(rt, clock, lambda key, t, flappy=flappy: key != flappy or int(t) % 4 >= 2, 120)
        assert share(log, flappy, 60, 120) < 0.1, (seed, share(log, flappy, 60, 120))
        failed = sum(1 for t, _, ok in log if t >= 60 and not ok)
        assert failed < 30, (seed, failed)


def test_linear_ejection_stays_available_and_keeps_an_endpoint_out_longer() -> None:
    """Envoy's form (`ejection = "linear"`, base 30 s): the endpoint is out for 30 s
    (round robin, so that it keeps failing until ejected)."""
    clock = FakeClock(start_ns=0)
    rt = runtime(clock, 1, balancer={"kind": "round-robin"}, outlier={"ejection": "linear", "base_ejection": "30s",
                                    "max_ejection": "300s"},
                 breaker={"reset": "30s", "reset_min": "30s"})
    bad = KEYS[0]
    log = drive(rt, clock, lambda key, t, bad=bad: key != bad or not 10 <= t < 15, 30)
    assert share(log, bad, 15, 30) == 0


def test_a_new_endpoint_gets_its_first_request_at_once() -> None:
    """Under light sequential load among ~1 ms endpoints an untried endpoint costs
    nothing, so the next pick that draws it sends it a request."""
    for seed in range(5):
        clock = FakeClock(start_ns=0)
        rt = runtime(clock, seed, keys=KEYS[:2])
        drive(rt, clock, lambda key, t: True, 10)
        rt.apply(runtime(clock, seed).service)  # a policy swap adds a third endpoint
        log = drive(rt, clock, lambda key, t: True, 5, t0=10)
        first = next((t for t, key, _ in log if key == KEYS[2]), None)
        assert first is not None and first - 10 < 1.0, (seed, first)
