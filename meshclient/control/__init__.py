"""Live policy from a control endpoint: HTTP poll / long-poll, etcd watch.

This package fetches documents on a schedule and hands them to the store's applier
(`meshclient.policy.apply`: validation, trust checks, the swap, the disk cache); it imports
nothing of the policy package at run time, so `PolicyStore.watch` can build a refresher."""

from .errors import ControlError
from .refresh import INDEX_HEADERS, FetchPlan, RefreshSchedule, RefreshStats
from .thread import RefreshThread

__all__ = [
    "INDEX_HEADERS",
    "ControlError",
    "FetchPlan",
    "RefreshSchedule",
    "RefreshStats",
    "RefreshThread",
]
