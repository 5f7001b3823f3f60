"""The base of every policy dataclass: declared constraints, checked at construction.

Each field declares its constraints and its documentation once, in `setting(...)`; the
checks run in `__post_init__` (so a policy built in Python is validated exactly like one
parsed from a document) and the reference in docs/ is generated from the same metadata.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import PolicyError


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
    """Return an error message for one field value, or None when it is valid."""
    choices = meta.get("choices")
    if choices is not None:
        values = value if isinstance(value, tuple) else (value,)
        for item in values:
            if item not in choices:
                return f"{name} must be one of {', '.join(choices)}: {item!r}"
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            return f"{name} must be finite: {value!r}"
        lo, hi, above = meta.get("lo"), meta.get("hi"), meta.get("above")
        if (lo is not None and value < lo) or (hi is not None and value > hi) or (
            above is not None and value <= above
        ):
            return f"{name} {_describe_range(meta)}: {value!r}"
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
        errors.extend(self._check())
        if errors:
            raise PolicyError(errors)

    def _check(self) -> list[str]:
        """Cross-field rules; each message starts with the field name."""
        return []
