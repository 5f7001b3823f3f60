"""What every inbound middleware holds, ASGI or WSGI: the app it wraps and the
authorization gate (`InboundGate`) with its denial counts. The middlewares differ only in
how they talk to their server."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from .checks import CheckFn
from .inbound import InboundGate

App = TypeVar("App")


class Gated(Generic[App]):
    """`app`, and `gate` built from `policy` (an `AuthorizationPolicy`, `Policy`,
    `PolicyStore`, or None for the process's store; bad secrets fail here, at start-up)
    with denials reported under `service`, and the optional `check` function (with
    `check_timeout` and `check_fail_open`, see docs/checks.md)."""

    def __init__(self, app: App, policy: Any = None, service: str = "inbound", *,
                 check: CheckFn | None = None, check_timeout: float = 0.2,
                 check_fail_open: bool = False) -> None:
        self.app = app
        self.gate = InboundGate(policy, service, check=check, check_timeout=check_timeout,
                                check_fail_open=check_fail_open)
        self.denials = self.gate.denials  # 403s counted per caller and rule

    def __repr__(self) -> str:
        kind = type(self).__module__.rpartition(".")[2]  # asgi or wsgi
        app = getattr(self.app, "__qualname__", type(self.app).__qualname__)
        return (f"<{kind}.{type(self).__name__} app={app} "
                f"limit={getattr(self, 'limit', None)!r} {self.gate!r}>")
