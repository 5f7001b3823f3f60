"""Documents (JSON / TOML / mappings) to the policy model and back, with field-path errors.

The parser is generic over the model: it walks each dataclass's fields and type hints, so a
new section added to `_model.py` is parsed, rejected when unknown, and reported by path with
no change here. Every problem in a document is reported, not just the first (up to
`MAX_ERRORS`), and whatever the input, the only exception is `PolicyError`: the document's
shape is checked first (`_document.check_shape`), a missing required field is reported by
path, and each object is built only from values that converted.
"""

from __future__ import annotations

import dataclasses
import keyword
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import PolicyError
from ._discovery import DiscoveryPolicy
from ._document import MAX_DOCUMENT_BYTES, MAX_ERRORS, check_shape, decode, read_document
from ._duration import format_duration, parse_duration
from ._fields import Model, check_value, show
from ._model import CODEC, EndpointSpec, Policy

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "load_policy_file",
    "policy_from_dict",
    "policy_from_text",
    "policy_to_dict",
    "section_errors",
]

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
        errors.append(f"{path or 'policy'} must be a table/object, not {_kind(data)}: "
                      f"{show(data)}")
        return _BAD
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    before = len(errors)
    errors.extend(f"{_join(path, name)} is required" for name, f in fields.items()
                  if name not in data and f.default is dataclasses.MISSING
                  and f.default_factory is dataclasses.MISSING)
    kwargs: dict[str, Any] = {}
    for key, raw in data.items():
        here = _join(path, key)
        if isinstance(key, str) and keyword.iskeyword(key) and key + "_" in fields:
            key = key + "_"  # a field named after a keyword (`from`) is spelt `from_`
        if key not in fields:
            errors.append(f"{_join(path, show(key)) if not isinstance(key, str) else here} "
                          f"is not a known field (expected one of: {', '.join(fields)})")
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
            errors.append(f"{path} must be a list, not {_kind(raw)}: {show(raw)}")
            return _BAD
        items = [_convert(args[0], item, _join(path, i), meta, errors) for i, item in enumerate(raw)]
        return _BAD if _BAD in items else tuple(items)
    if origin in (Mapping, dict, typing.Mapping) or tp in (Mapping, dict):
        if not isinstance(raw, Mapping):
            errors.append(f"{path} must be a table/object, not {_kind(raw)}: {show(raw)}")
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
        errors.append(f"{path} must be {getattr(tp, '__name__', tp)}, not {_kind(raw)}: "
                      f"{show(raw)}")
        return _BAD
    return raw


def merge_documents(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` merged into `base`: mappings key by key, anything else replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_documents(out[key], value)
        else:
            out[key] = value
    return out


def section_errors(cls: type[Any], document: object) -> list[str]:
    """The errors of building the policy section `cls` (a model class such as
    `RetryPolicy`) from `document`, as the policy parser reports them; empty: valid."""
    errors: list[str] = []
    _build(cls, document, "", errors)
    return errors


def policy_from_dict(data: Mapping[str, Any]) -> Policy:
    """Build a `Policy`; a service's sections are merged over `defaults` key by key."""
    if not isinstance(data, Mapping):
        raise PolicyError(f"policy must be a table/object, not {_kind(data)}")
    shape = check_shape(data)
    if shape:
        raise PolicyError(_bounded(shape))
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
                        spec[section] = merge_documents(defaults[section], spec[section])
            merged[name] = spec
        data = {**data, "services": merged}
    errors: list[str] = []
    policy = _build(Policy, data, "", errors)
    if errors:
        raise PolicyError(_bounded(errors))
    return typing.cast(Policy, policy)


def _bounded(errors: list[str]) -> list[str]:
    if len(errors) <= MAX_ERRORS:
        return errors
    return [*errors[:MAX_ERRORS], f"… and {len(errors) - MAX_ERRORS} more problems"]


def policy_from_text(text: str | bytes, *, fmt: str = "auto", origin: str = "policy") -> Policy:
    """Parse a JSON or TOML document (`fmt` "json", "toml" or "auto": JSON when it starts
    with `{`). Raises `PolicyError`, and only `PolicyError`, for any bad input."""
    data = decode(text, fmt=fmt, origin=origin)
    if not isinstance(data, Mapping):
        raise PolicyError(f"{origin}: policy must be a table/object, not {_kind(data)}")
    return policy_from_dict(data)


def load_policy_file(path: str | Path) -> Policy:
    """Load a JSON or TOML policy file (format by suffix, else by content), reading at most
    `MAX_DOCUMENT_BYTES` + 1 bytes of it."""
    raw = read_document(path)
    fmt = {".json": "json", ".toml": "toml"}.get(Path(path).suffix.lower(), "auto")
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
            name = f.name[:-1] if keyword.iskeyword(f.name[:-1]) else f.name
            out[name] = _plain(item, bool(f.metadata.get("duration")))
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


CODEC.from_dict, CODEC.load, CODEC.to_dict = policy_from_dict, load_policy_file, policy_to_dict
