"""Deadline arithmetic, per-request overrides and the httpx timeout extension."""

from __future__ import annotations

import pytest

from meshclient.policy._model import TimeoutPolicy
from meshclient.resilience.deadline import Deadline, TimeoutOverrideError, attempt_timeout


def test_deadline_sources_and_attempt_bounds() -> None:
    now = 10**12
    d = Deadline.start(TimeoutPolicy(total=2.0, per_try=0.5), {}, now, None)
    assert d.remaining_ns(now) == 2 * 10**9 and d.per_try_ns == 5 * 10**8
    assert d.remaining_ns(now + 3 * 10**9) == -10**9 and not d.inherited
    inherited = Deadline.start(TimeoutPolicy(), {}, now, now + 10**9)
    assert inherited.inherited and inherited.remaining_ns(now) == 10**9
    over = Deadline.start(TimeoutPolicy(), {"meshclient.timeout": {"total": 1, "per_try": 0.1}},
                          now, None)
    assert over.remaining_ns(now) == 10**9 and over.per_try_ns == 10**8
    with pytest.raises(TimeoutOverrideError, match="'soon'"):
        Deadline.start(TimeoutPolicy(), {"meshclient.timeout": "soon"}, now, None)
    with pytest.raises(TimeoutOverrideError, match="per_retry"):
        Deadline.start(TimeoutPolicy(), {"meshclient.timeout": {"per_retry": 1}}, now, None)


def test_attempt_timeout_never_exceeds_the_callers() -> None:
    caller = {"connect": 5.0, "read": 0.1, "write": None, "pool": 5.0}
    assert attempt_timeout(caller, 1.0) == {"connect": 1.0, "read": 0.1, "write": 1.0,
                                            "pool": 1.0}
    assert attempt_timeout(None, 2.0) == dict.fromkeys(("connect", "read", "write", "pool"), 2.0)
