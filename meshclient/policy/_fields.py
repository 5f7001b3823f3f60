"""The base of every policy dataclass: declared constraints, checked at construction.

Each field declares its constraints and its documentation once, in `setting(...)`; the
checks run in `__post_init__` (so a policy built in Python is validated exactly like one
parsed from a document) and the reference in docs/ is generated from the same metadata.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..errors import PolicyError

#: The longest duration any field accepts: 365 days. Far beyond any sensible timeout, TTL
#: or ejection, and well inside what the timers that receive durations can hold
#: (threading's TIMEOUT_MAX and int64 nanoseconds, about 292 years), so none overflows.
MAX_DURATION_S = 365 * 86400.0

#: C0 control characters and DEL (TAB allowed): never part of a host, a path, a header name
#: or value, a URL or a name, and CR/LF/NUL there would split or truncate a header line.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_SHOW_CHARS = 80
#: An HTTP header name (RFC 9110 token).
HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`|~]+")  # use fullmatch
#: A host name or IPv4 address as written in `host:port` (IPv6 goes in brackets).
_HOST_NAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.\-]{0,251}[A-Za-z0-9_.])?")


def host_error(host: str) -> str | None:
    """Why `host` cannot be a host name or IPv4 address, or None when it can."""
    if not _HOST_NAME.fullmatch(host) or ".." in host:
        return f"has an invalid host name (letters, digits, '-', '_' and '.' only): {show(host)}"
    return None


def show(value: object) -> str:
    """`repr(value)` for an error message: bounded in length, safe for any value.

    A huge integer is described by its size (its repr alone may raise `ValueError`), and a
    long or deeply nested value is cut short rather than repeated in full.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"<an integer of about {int(value.bit_length() * 0.30103) + 1} digits>"
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # a huge integer or deep nesting inside
        return f"<{type(value).__name__}>"
    return text if len(text) <= _SHOW_CHARS else text[:_SHOW_CHARS - 5] + "…" + text[-4:]


def control_error(name: str, value: Any) -> str | None:
    """Why `value` (a string, or strings in a tuple or table) holds a control character."""
    if isinstance(value, str):
        if _CONTROL.search(value):
            return f"{name} must not contain control characters (CR, LF, NUL …): {show(value)}"
        return None
    if isinstance(value, tuple):
        for item in value:
            message = control_error(name, item)
            if message is not None:
                return message
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            message = control_error(name, key) or (
                control_error(name, item) if isinstance(item, str) else None)
            if message is not None:
                return message
    return None


def setting(
    default: Any = dataclasses.MISSING,
    *,
    doc: str,
    lo: float | None = None,
    hi: float | None = None,
    above: float | None = None,
    choices: Iterable[str] | None = None,
    duration: bool = False,
    factory: Callable[[], Any] | None = None,
) -> Any:
    """A dataclass field with its documentation and constraints.

    `lo`/`hi` are inclusive bounds, `above` an exclusive lower bound, `choices` the allowed
    strings, `duration` marks seconds written as "250ms" / "10s" in documents.
    """
    meta = {
        "doc": doc,
        "lo": lo,
        "hi": hi,
        "above": above,
        "choices": tuple(choices) if choices is not None else None,
        "duration": duration,
    }
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _describe_range(meta: dict[str, Any]) -> str:
    lo, hi, above = meta["lo"], meta["hi"], meta["above"]
    if lo is not None and hi is not None:
        return f"must be between {lo:g} and {hi:g}"
    if above is not None:
        return f"must be greater than {above:g}"
    if lo is not None:
        return f"must be at least {lo:g}"
    return f"must be at most {hi:g}"


def check_value(name: str, value: Any, meta: dict[str, Any]) -> str | None:
    """Return an error message for one field value, or None when it is valid.

    Every string (alone, in a list, or as a table's key or value) is free of control
    characters; a duration is at most `MAX_DURATION_S`.
    """
    message = control_error(name, value)
    if message is not None:
        return message
    choices = meta.get("choices")
    if choices is not None and value is not None:
        values = value if isinstance(value, tuple) else (value,)
        for item in values:
            if item not in choices:
                return f"{name} must be one of {', '.join(choices)}: {show(item)}"
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            return f"{name} must be finite: {value!r}"
        lo, hi, above = meta.get("lo"), meta.get("hi"), meta.get("above")
        if (lo is not None and value < lo) or (hi is not None and value > hi) or (
            above is not None and value <= above
        ):
            return f"{name} {_describe_range(meta)}: {show(value)}"
        if meta.get("duration") and value > MAX_DURATION_S:
            return (f"{name} must be at most {MAX_DURATION_S:.0f}s (365 days): "
                    f"{show(value)}")
    return None


class Model:
    """Mixin for frozen policy dataclasses: field checks, then `_check()` for cross-field rules."""

    __slots__ = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Kept because meshclient/__init__.py rewrites __module__ for public names, and the
        # parser resolves type hints in the module that defined the class.
        cls._home_module = cls.__module__  # type: ignore[attr-defined]

    def __post_init__(self) -> None:
        errors: list[str] = []
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if f.metadata:
                message = check_value(f.name, getattr(self, f.name), dict(f.metadata))
                if message is not None:
                    errors.append(message)
        try:
            errors.extend(self._check())
        except (ArithmeticError, TypeError, ValueError):
            # A cross-field rule may not cope with a value its field already refused
            # (an integer too large for a float); the field's error says what is wrong.
            if not errors:
                raise
        if errors:
            raise PolicyError(errors)

    def _check(self) -> list[str]:
        """Cross-field rules; each message starts with the field name."""
        return []
