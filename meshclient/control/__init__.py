"""Live policy from a control endpoint: HTTP poll / long-poll, etcd watch, disk cache."""

from .apply import Applier, RefreshStats
from .errors import ControlError
from .refresh import INDEX_HEADERS, FetchPlan, RefreshSchedule
from .summary import summarize
from .thread import RefreshThread

__all__ = [
    "INDEX_HEADERS",
    "Applier",
    "ControlError",
    "FetchPlan",
    "RefreshSchedule",
    "RefreshStats",
    "RefreshThread",
    "summarize",
]
