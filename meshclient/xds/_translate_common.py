"""Shared pieces of the xDS translation: the error, durations, percentages, `Any` unpacking.

Every problem is a `PolicyError` whose message names the resource and the field path
(`route_config 'r1': virtual_hosts[0].routes[2].match.safe_regex.regex: ...`), which the
client sends back as the NACK's `error_detail`.
"""

from __future__ import annotations

from typing import Any, TypeVar

from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import DecodeError, Message

from ..errors import PolicyError
from ..policy import section_errors

M = TypeVar("M", bound=Message)

#: Longest duration a policy field accepts (365 days), as meshclient's model does.
MAX_SECONDS = 365 * 86400.0

#: `type.googleapis.com/` + the full name: how an `Any` names its message type.
PREFIX = "type.googleapis.com/"

_TYPED_STRUCTS = (PREFIX + "xds.type.v3.TypedStruct", PREFIX + "udpa.type.v1.TypedStruct")


class Where:
    """The resource being read, and a field path inside it, for error messages."""

    __slots__ = ("kind", "name", "path")

    def __init__(self, kind: str, name: str, path: str = "") -> None:
        self.kind, self.name, self.path = kind, name, path

    def at(self, field: str | int) -> Where:
        step = f"[{field}]" if isinstance(field, int) else field
        sep = "" if isinstance(field, int) or not self.path else "."
        return Where(self.kind, self.name, f"{self.path}{sep}{step}")

    def error(self, message: str) -> PolicyError:
        here = f"{self.path}: " if self.path else ""
        return PolicyError(f"{self.kind} {self.name!r}: {here}{message}")


def seconds(where: Where, value: duration_pb2.Duration) -> float:
    """A protobuf Duration in seconds; negative or beyond 365 days is refused."""
    if value.seconds < 0 or value.nanos < 0 or value.nanos >= 1_000_000_000:
        raise where.error(f"must be a non-negative duration: {value.seconds}s "
                          f"{value.nanos}ns")
    total = float(value.seconds + value.nanos / 1e9)
    if total > MAX_SECONDS:
        raise where.error(f"must be at most 365 days: {total:g}s")
    return total


def fraction_percent(where: Where, value: Any) -> float:
    """A `FractionalPercent` as a percentage 0-100 (above 100% counts as 100%, as in Envoy)."""
    denominators = {0: 100, 1: 10_000, 2: 1_000_000}
    denominator = denominators.get(value.denominator)
    if denominator is None:
        raise where.at("denominator").error(f"unknown denominator: {value.denominator}")
    return min(100.0, float(value.numerator) * 100.0 / denominator)


def type_name(value: any_pb2.Any) -> str:
    """The message type an `Any` holds, looking through a `TypedStruct` wrapper."""
    if value.type_url in _TYPED_STRUCTS:
        from xds.type.v3 import typed_struct_pb2

        inner = typed_struct_pb2.TypedStruct()
        if value.value and _parse(inner, value.value):
            return str(inner.type_url).rpartition("/")[2]
    return str(value.type_url).rpartition("/")[2]


def unpack(where: Where, value: any_pb2.Any, cls: type[M]) -> M:
    """The message of type `cls` inside `value`; a PolicyError for another type or bad bytes."""
    expected = cls.DESCRIPTOR.full_name
    if value.type_url.rpartition("/")[2] != expected:
        raise where.error(f"must hold {expected}, not {value.type_url!r}")
    out: M = cls()
    if not _parse(out, value.value):
        raise where.error(f"is not a valid {expected}")
    return out


def _parse(message: Message, data: bytes) -> bool:
    try:
        message.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError):  # RuntimeError: recursion limit
        return False
    return True


def check(where: Where, cls: type[Any], document: Any) -> None:
    """Build the policy model `cls` from `document` as the policy parser would, so a value
    meshclient refuses (a regex, a header name, a bound) is refused here, at its field."""
    errors = section_errors(cls, document)
    if errors:
        raise where.error("; ".join(errors))
