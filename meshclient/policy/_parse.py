"""Documents (JSON / TOML / mappings) to the policy model and back, with field-path errors.

The parser is generic over the model: it walks each dataclass's fields and type hints, so a
new section added to `_model.py` is parsed, rejected when unknown, and reported by path with
no change here. Every problem in a document is reported, not just the first.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import PolicyError
from ._discovery import DiscoveryPolicy
from ._duration import format_duration, parse_duration
from ._fields import Model, check_value
from ._model import EndpointSpec, Policy

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

MAX_DOCUMENT_BYTES = 1 << 20
_INHERITED = ("timeout", "retry", "balancer", "breaker", "outlier", "tls", "auth", "limits")
_BAD: Any = object()


def _join(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _kind(value: object) -> str:
    return {dict: "a table", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__)


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        home = sys.modules[getattr(cls, "_home_module", cls.__module__)]
        hints = _HINTS[cls] = typing.get_type_hints(cls, globalns=vars(home))
    return hints


def _build(cls: type[Any], data: object, path: str, errors: list[str]) -> Any:
    if cls is EndpointSpec and isinstance(data, str):
        data = {"address": data}
    if cls is DiscoveryPolicy and isinstance(data, str):
        data = {"url": data}
    if not isinstance(data, Mapping):
        errors.append(f"{path or 'policy'} must be a table/object, not {_kind(data)}: {data!r}")
        return _BAD
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    before = len(errors)
    kwargs: dict[str, Any] = {}
    for key, raw in data.items():
        here = _join(path, key)
        if key not in fields:
            errors.append(f"{here} is not a known field (expected one of: {', '.join(fields)})")
            continue
        value = _convert(hints[key], raw, here, dict(fields[key].metadata), errors)
        if value is not _BAD:
            kwargs[key] = value
    if len(errors) > before:
        # Still report the field checks of the siblings that did convert (every problem,
        # not just the first); cross-field rules need the whole object, so they wait.
        for key, value in kwargs.items():
            message = check_value(key, value, dict(fields[key].metadata))
            if message is not None and fields[key].metadata:
                errors.append(_join(path, message))
        return _BAD
    try:
        return cls(**kwargs)
    except PolicyError as exc:
        errors.extend(_join(path, message) if path else message for message in exc.errors)
        return _BAD


def _convert(tp: Any, raw: object, path: str, meta: dict[str, Any], errors: list[str]) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if raw is None:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, raw, path, meta, errors)
    if origin is tuple:
        if not isinstance(raw, (list, tuple)):
            errors.append(f"{path} must be a list, not {_kind(raw)}: {raw!r}")
            return _BAD
        items = [_convert(args[0], item, _join(path, i), meta, errors) for i, item in enumerate(raw)]
        return _BAD if _BAD in items else tuple(items)
    if origin in (Mapping, dict, typing.Mapping) or tp in (Mapping, dict):
        if not isinstance(raw, Mapping):
            errors.append(f"{path} must be a table/object, not {_kind(raw)}: {raw!r}")
            return _BAD
        value_type = args[1] if args else Any
        out = {str(k): _convert(value_type, v, _join(path, k), meta, errors) for k, v in raw.items()}
        return _BAD if _BAD in out.values() else out
    if isinstance(tp, type) and issubclass(tp, Model):
        return _build(tp, raw, path, errors)
    return _scalar(tp, raw, path, meta, errors)


def _scalar(tp: Any, raw: object, path: str, meta: dict[str, Any], errors: list[str]) -> Any:
    if meta.get("duration"):
        try:
            return parse_duration(raw)
        except ValueError as exc:
            errors.append(f"{path} {exc}")
            return _BAD
    ok: bool
    if tp is bool:
        ok = isinstance(raw, bool)
    elif tp is int:
        ok = isinstance(raw, int) and not isinstance(raw, bool)
    elif tp is float:
        ok = isinstance(raw, (int, float)) and not isinstance(raw, bool)
    elif tp is str:
        if isinstance(raw, int) and not isinstance(raw, bool):
            raw = str(raw)  # status codes may be written as numbers
        ok = isinstance(raw, str)
    else:
        ok = True
    if not ok:
        errors.append(f"{path} must be {getattr(tp, '__name__', tp)}, not {_kind(raw)}: {raw!r}")
        return _BAD
    return raw


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def policy_from_dict(data: Mapping[str, Any]) -> Policy:
    """Build a `Policy`; a service's sections are merged over `defaults` key by key."""
    if not isinstance(data, Mapping):
        raise PolicyError(f"policy must be a table/object, not {_kind(data)}")
    defaults = data.get("defaults")
    services = data.get("services")
    if isinstance(defaults, Mapping) and isinstance(services, Mapping):
        merged = {}
        for name, spec in services.items():
            if isinstance(spec, Mapping):
                spec = dict(spec)
                for section in _INHERITED:
                    if isinstance(spec.get(section), Mapping) and isinstance(
                            defaults.get(section), Mapping):
                        spec[section] = _merge(defaults[section], spec[section])
            merged[name] = spec
        data = {**data, "services": merged}
    errors: list[str] = []
    policy = _build(Policy, data, "", errors)
    if errors:
        raise PolicyError(errors)
    return typing.cast(Policy, policy)


def policy_from_text(text: str | bytes, *, fmt: str = "auto", origin: str = "policy") -> Policy:
    """Parse a JSON or TOML document (`fmt` "json", "toml" or "auto")."""
    if len(text) > MAX_DOCUMENT_BYTES:
        raise PolicyError(f"{origin}: document is larger than {MAX_DOCUMENT_BYTES} bytes")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolicyError(f"{origin}: not UTF-8: {exc}") from None
    if fmt == "auto":
        fmt = "json" if text.lstrip().startswith(("{", "[")) else "toml"
    try:
        data = json.loads(text) if fmt == "json" else tomllib.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"{origin}: invalid JSON at line {exc.lineno} column {exc.colno}: "
                          f"{exc.msg}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{origin}: invalid TOML: {exc}") from None
    return policy_from_dict(data)


def load_policy_file(path: str | Path) -> Policy:
    """Load a JSON or TOML policy file (format by suffix, else by content)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read policy file: {exc.strerror or exc}") from None
    fmt = {".json": "json", ".toml": "toml"}.get(path.suffix.lower(), "auto")
    return policy_from_text(raw, fmt=fmt, origin=str(path))


def _plain(value: Any, duration: bool = False) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            if not f.init:
                continue
            item = getattr(value, f.name)
            if item is None or (isinstance(item, (tuple, Mapping)) and not item
                                and f.name in ("metadata",)):
                continue
            out[f.name] = _plain(item, bool(f.metadata.get("duration")))
        return out
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if duration and isinstance(value, float):
        return format_duration(value)
    return value


def policy_to_dict(policy: Policy) -> dict[str, Any]:
    """The normalised document: every field, durations spelled as strings."""
    return typing.cast(dict[str, Any], _plain(policy))
