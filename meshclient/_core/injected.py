"""An injected abort as the outcome the flow classifies.

Routing decides the fault (`meshclient.routing.fault`, pure data); the core turns an abort
into the `Outcome` it feeds to classification in place of a `Send`'s. Kept here so that
routing never imports the core.
"""

from __future__ import annotations

import httpx

from ..policy import AbortFault
from ..routing.fault import abort_result
from .actions import Outcome


def injected_outcome(abort: AbortFault, request: httpx.Request) -> Outcome:
    """`abort_result` as the `Outcome` the flow feeds to classification."""
    result = abort_result(abort, request)
    if isinstance(result, httpx.Response):
        return Outcome(response=result)
    return Outcome(error=result)
