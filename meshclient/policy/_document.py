"""Policy documents as data: bounded reads, JSON and TOML decoding, and the shape checks every
document passes before the model sees it.

A policy may come from a control plane, an etcd key or a file someone else writes, so a
document is treated as hostile until checked. The limits, each a `PolicyError` naming the
place and the value rather than a `MemoryError`, `RecursionError`, `OverflowError` or a
silently kept value:

- at most `MAX_DOCUMENT_BYTES` (1 MiB): a file is read up to the limit plus one byte, so
  `/dev/zero` or a runaway file fails at once;
- at most `MAX_DEPTH` (32) levels of tables and lists (a real policy needs about 8);
- a key given twice in one JSON object is an error (TOML forbids it already), as Rust's
  serde-derived decoders and Go's encoding/json/v2 treat it, rather than the last one
  silently winning;
- no NaN or Infinity, and integers within 64 bits (`MAX_INTEGER`).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import PolicyError
from ._fields import show

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

MAX_DOCUMENT_BYTES = 1 << 20
MAX_DEPTH = 32
MAX_INTEGER = (1 << 63) - 1
#: Problems reported for one document; a hostile one could otherwise list a million.
MAX_ERRORS = 50
_DIGITS = 40  # longer integer literals are out of range whatever their value


class _Duplicated(dict[str, Any]):
    """A JSON object that named some keys more than once (`duplicates`, in order)."""

    duplicates: list[str]


class _OutOfRange:
    """A JSON or TOML number too large to hold; reported by `check_shape` with its path."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text if len(self.text) <= 40 else f"<a number of {len(self.text)} digits>"


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) == len(pairs):
        return out
    dup = _Duplicated(out)
    dup.duplicates = []
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            dup.duplicates.append(key)
        seen.add(key)
    return dup


def _int(text: str) -> int | _OutOfRange:
    return int(text) if len(text) <= _DIGITS else _OutOfRange(text)


def _float(text: str) -> float | _OutOfRange:
    value = float(text)
    return value if math.isfinite(value) else _OutOfRange(text)


def _join(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def check_shape(data: object, origin: str = "") -> list[str]:
    """Depth, duplicate keys and numbers of a parsed document, walked without recursion.

    Returns one message per problem, each starting with the path (`origin` when given).
    """
    errors: list[str] = []
    stack: list[tuple[object, str, int]] = [(data, "", 0)]
    while stack and len(errors) < MAX_ERRORS:
        value, path, depth = stack.pop()
        where = path or "policy"
        if isinstance(value, (Mapping, list, tuple)):
            if depth >= MAX_DEPTH:
                errors.append(f"{where} is nested more than {MAX_DEPTH} levels deep")
                continue
            if isinstance(value, _Duplicated):
                errors.extend(f"{_join(path, key)} is given more than once"
                              for key in value.duplicates)
            items = value.items() if isinstance(value, Mapping) else enumerate(value)
            # Reversed, so that problems come out in document order.
            stack.extend(reversed([(item, _join(path, key), depth + 1) for key, item in items]))
        elif isinstance(value, _OutOfRange):
            errors.append(f"{where} must be a finite number within range: {value!r}")
        elif isinstance(value, float) and not math.isfinite(value):
            errors.append(f"{where} must be a finite number: {value!r}")
        elif isinstance(value, int) and not -MAX_INTEGER - 1 <= value <= MAX_INTEGER:
            errors.append(f"{where} is out of range (integers are limited to 64 bits): "
                          f"{show(value)}")
    if origin:
        errors = [f"{origin}: {e}" for e in errors]
    return errors


def decode(text: str | bytes, *, fmt: str = "auto", origin: str = "policy") -> object:
    """Parse a JSON or TOML document into plain data; raises `PolicyError` only.

    `fmt` "auto" reads a document whose first character is `{` as JSON, else as TOML
    (a TOML document may start with a `[table]` header).
    """
    if fmt not in ("auto", "json", "toml"):
        raise PolicyError(f"{origin}: format must be auto, json or toml: {show(fmt)}")
    if not isinstance(text, (str, bytes)):
        raise PolicyError(f"{origin}: a document must be str or bytes, not "
                          f"{type(text).__name__}")
    if len(text) > MAX_DOCUMENT_BYTES:
        raise PolicyError(f"{origin}: document is larger than {MAX_DOCUMENT_BYTES} bytes")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolicyError(f"{origin}: not UTF-8: {exc}") from None
    if fmt == "auto":
        fmt = "json" if text.lstrip().startswith("{") else "toml"
    try:
        if fmt == "json":
            return json.loads(text, object_pairs_hook=_object, parse_int=_int,
                              parse_float=_float, parse_constant=_float)
        return tomllib.loads(text, parse_float=_float)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"{origin}: invalid JSON at line {exc.lineno} column {exc.colno}: "
                          f"{exc.msg}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{origin}: invalid TOML: {exc}") from None
    except RecursionError:
        raise PolicyError(f"{origin}: document is nested more than {MAX_DEPTH} levels "
                          "deep") from None
    except ValueError as exc:  # an integer literal beyond Python's digit limit (TOML)
        raise PolicyError(f"{origin}: invalid {fmt.upper()}: a number is out of range "
                          f"({exc})") from None


def read_document(path: str | Path) -> bytes:
    """The bytes of a policy file, reading at most `MAX_DOCUMENT_BYTES` + 1 of them.

    Raises `PolicyError` naming the file when it cannot be read or is too large.
    """
    try:
        with open(path, "rb") as file:
            raw = file.read(MAX_DOCUMENT_BYTES + 1)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = getattr(exc, "strerror", None) or exc
        raise PolicyError(f"{path}: cannot read policy file: {reason}") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise PolicyError(f"{path}: policy file is larger than {MAX_DOCUMENT_BYTES} bytes")
    return raw
