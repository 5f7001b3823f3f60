"""The inbound side: handlers and middleware pick up the caller's trace, deadline and
attempt number; optional load shedding; the admin/status endpoint."""

from .decorators import HandlerRejected, handler
from .inbound import Rejection, ServerScope, admission, deadline_expired
from .shedding import ConcurrencyLimit, SheddingError, should_shed

__all__ = ["ConcurrencyLimit", "HandlerRejected", "Rejection", "ServerScope", "SheddingError",
           "admission", "deadline_expired", "handler", "should_shed"]
