"""`MeshTransport`: the blocking shell around the sans-I/O core."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

import httpx

from .._core.actions import Discard, Done, Outcome, Send, Sleep, WaitForEndpoints
from ..policy import Policy, PolicyStore
from ._base import MeshBase
from ._streams import TrackedSyncStream


class MeshTransport(MeshBase, httpx.BaseTransport):
    """An `httpx.BaseTransport` that routes requests for services in the policy through the
    mesh and passes every other request straight to `inner`.

    **Parameters:**

    * **policy** - a `Policy`, a `PolicyStore`, or `None` for `meshclient.default_store()`
      (the environment's policy, shared by the process).
    * **inner** - the transport that does the I/O; default `httpx.HTTPTransport(**kwargs)`.
    * **kwargs** - passed to `httpx.HTTPTransport` when `inner` is not given.

    Usage:
    ```python
    client = httpx.Client(transport=MeshTransport())
    client.get("http://users/v1/users/42")
    ```
    """

    def __init__(self, policy: Policy | PolicyStore | None = None,
                 inner: httpx.BaseTransport | None = None, **kwargs: Any) -> None:
        self._setup(policy)
        self.inner = inner if inner is not None else httpx.HTTPTransport(**kwargs)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        flow = self._flow(request)
        if flow is None:
            return self.inner.handle_request(request)
        action = next(flow)
        while True:
            if isinstance(action, Send):
                try:
                    outcome = Outcome(response=self.inner.handle_request(action.request))
                except Exception as exc:  # the core decides what the caller sees
                    outcome = Outcome(error=exc)
                action = flow.send(outcome)
            elif isinstance(action, Done):
                response = action.response
                if action.on_close is not None:
                    response.stream = TrackedSyncStream(
                        response.stream,  # type: ignore[arg-type]
                        action.on_close)
                return response
            elif isinstance(action, Sleep):
                time.sleep(action.seconds)
                action = flow.send(None)
            elif isinstance(action, WaitForEndpoints):
                action.waiter.wait(action.timeout_s)
                action = flow.send(None)
            else:
                assert isinstance(action, Discard)
                action.response.close()
                action = flow.send(None)

    def close(self) -> None:
        self._close_owned()
        self.inner.close()

    def __enter__(self) -> MeshTransport:
        self.inner.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None = None,
                 exc_value: BaseException | None = None,
                 traceback: TracebackType | None = None) -> None:
        self._close_owned()
        self.inner.__exit__(exc_type, exc_value, traceback)
