"""Envoy's fault filter (`envoy.extensions.filters.http.fault.v3.HTTPFault`) -> meshclient
fault injection (`FaultPolicy` documents).

A fixed delay and an HTTP-status abort, each with its percentage, map one to one. Faults
the caller chooses through headers (`header_delay`, `header_abort`), gRPC-status aborts and
`max_active_faults` have no meshclient counterpart and are ignored; a fault restricted by
`headers` is accepted when that is one "header present" matcher, as meshclient's fault
`header` means.
"""

from __future__ import annotations

from typing import Any

from envoy.extensions.filters.http.fault.v3 import fault_pb2

from ._translate_common import Where, fraction_percent, seconds

FAULT = fault_pb2.HTTPFault.DESCRIPTOR.full_name


def fault_document(where: Where, f: fault_pb2.HTTPFault) -> dict[str, Any] | None:
    """The `FaultPolicy` document of `f`, or None when it injects nothing meshclient can."""
    out: dict[str, Any] = {}
    if f.HasField("delay") and f.delay.WhichOneof("fault_delay_secifier") == "fixed_delay":
        here = where.at("delay")
        duration = seconds(here.at("fixed_delay"), f.delay.fixed_delay)
        percent = fraction_percent(here.at("percentage"), f.delay.percentage)
        if duration > 0:
            out["delay"] = {"percent": percent, "duration": duration}
    if f.HasField("abort") and f.abort.WhichOneof("error_type") == "http_status":
        here = where.at("abort")
        status = f.abort.http_status
        if not 200 <= status <= 599:
            raise here.at("http_status").error(f"must be between 200 and 599: {status}")
        out["abort"] = {"percent": fraction_percent(here.at("percentage"),
                                                    f.abort.percentage), "status": status}
    if f.headers:
        h = f.headers[0]
        if (len(f.headers) > 1 or h.WhichOneof("header_match_specifier") != "present_match"
                or not h.present_match or h.invert_match):
            raise where.at("headers").error("only one present_match header matcher is "
                                            "supported")
        out["header"] = h.name
    if "delay" not in out and "abort" not in out:
        return None
    return out
