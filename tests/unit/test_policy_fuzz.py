"""Properties of the parsers: whatever is done to a valid policy document, parsing it gives a
`Policy` or a `PolicyError`, never any other exception (the control refresher relies on
this); a duration is a bounded number of seconds or a ValueError; every host name without
a double dash has one `MESHCLIENT_ENDPOINTS_` spelling."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshclient import Policy, PolicyError
from meshclient.policy import format_duration, parse_duration, policy_from_env, policy_from_text
from meshclient.policy._envnames import service_from_variable, variable_for_service
from meshclient.policy._fields import MAX_DURATION_S

from .policy_documents import RICH_TOML, rich

pytestmark = pytest.mark.slow

STRANGE_TEXT = st.sampled_from([
    "", " ", "\x00", "a\r\nb", "\n", "\x7f", "é", "\ud800", "*", "(a+)+$", "[", "{", "0",
    "-1", "1e400", "NaN", "inf", "http://", "redis://\r\n", "a" * 5000, "127.0.0.1:0",
    "[::1]:80", "host:99999", "spiffe://x/\x00", "/path with space", "$(rm -rf)", "²",
]) | st.text(max_size=30)
NUMBERS = st.sampled_from([0, -1, 1, 2**63, -(2**63) - 1, 1e300, float("nan"), float("inf"),
                           -0.0, 0.5, 65536]) | st.sampled_from([400, 5000]).map(lambda k: 10**k)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | NUMBERS | STRANGE_TEXT


def _nested(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(STRANGE_TEXT, inner, max_size=3), max_leaves=8) \
    | st.integers(min_value=0, max_value=300).map(_nested)


def _paths(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _paths(value, (*path, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += _paths(value, (*path, i))
    return out


def _mutate(doc: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent: Any = doc
        for key in path[:-1]:
            parent = parent[key]
        op = data.draw(st.sampled_from(["drop", "replace", "replace", "add"]))
        if op == "drop":
            del parent[path[-1]]
        elif op == "replace":
            parent[path[-1]] = data.draw(VALUES)
        elif isinstance(parent, dict):
            parent[data.draw(STRANGE_TEXT)] = data.draw(VALUES)
        else:
            parent.append(data.draw(VALUES))
    return doc


def _only_policy_error(parse: Any, *args: Any, **kwargs: Any) -> None:
    try:
        result = parse(*args, **kwargs)
    except PolicyError as exc:
        assert exc.errors and all(isinstance(e, str) and e for e in exc.errors)
    else:
        assert isinstance(result, Policy)


# 150 examples: each parses a whole rich policy document (tens of ms); at 150 every mutation
# kind still lands in every section, at half the time of 300.
_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@_SETTINGS
@given(st.data())
def test_mutated_documents_give_a_policy_or_a_policy_error(data: st.DataObject) -> None:
    doc = _mutate(rich(), data)
    _only_policy_error(Policy.from_dict, doc)
    try:
        text = json.dumps(doc)
    except (ValueError, RecursionError):  # 10**5000 cannot even be written as JSON
        return
    _only_policy_error(policy_from_text, text)
    _only_policy_error(policy_from_text, text.encode("utf-8", "surrogatepass"))
    if data.draw(st.booleans()):  # the same key twice, in text form
        key = data.draw(st.sampled_from(['"version"', '"services"', '"defaults"']))
        _only_policy_error(policy_from_text, text.replace("{", "{" + key + ": 1, ", 1))


@_SETTINGS
@given(st.data())
def test_mangled_text_gives_a_policy_or_a_policy_error(data: st.DataObject) -> None:
    text = data.draw(st.sampled_from([RICH_TOML, json.dumps(rich())]))
    for _ in range(data.draw(st.integers(min_value=1, max_value=5))):
        at = data.draw(st.integers(min_value=0, max_value=len(text)))
        op = data.draw(st.sampled_from(["insert", "cut", "repeat"]))
        if op == "insert":
            text = text[:at] + data.draw(STRANGE_TEXT | st.sampled_from(
                ["[" * 2000, "{" * 2000, '"a":' * 100, "9" * 5000, "\n[services.users]\n",
                 "= 1\n", "\x00"])) + text[at:]
        elif op == "cut":
            text = text[:at] + text[at + data.draw(st.integers(0, 40)):]
        else:
            line_end = text.find("\n", at)
            line = text[text.rfind("\n", 0, at) + 1:line_end if line_end >= 0 else None]
            text = text[:at] + "\n" + line + "\n" + text[at:]
    fmt = data.draw(st.sampled_from(["auto", "json", "toml"]))
    _only_policy_error(policy_from_text, text, fmt=fmt)
    _only_policy_error(policy_from_text, text.encode("utf-8", "surrogatepass"), fmt=fmt)


@settings(max_examples=300, deadline=None)
@given(SCALARS | st.from_regex(r"\s*[0-9]{0,400}(\.[0-9]*)?(e[0-9]{1,4})?\s*(ns|us|ms|s|m|h)?\s*",
                               fullmatch=True))
def test_a_duration_is_a_bounded_number_of_seconds_or_a_value_error(value: object) -> None:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        assert not isinstance(exc, OverflowError) and str(exc).startswith("must be ")
    else:
        assert 0 <= seconds <= MAX_DURATION_S
        assert parse_duration(format_duration(seconds)) == seconds  # exact round trip


LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True).filter(
    lambda label: "--" not in label)


# 150 examples: generating names from a filtered regex is the slow part; 150 names of 1-4
# labels still cover digits, dashes and every label position.
@settings(max_examples=150, deadline=None)
@given(st.lists(LABEL, min_size=1, max_size=4).map(".".join))
def test_every_host_name_without_a_double_dash_has_one_variable_spelling(name: str) -> None:
    suffix = variable_for_service(name)
    assert suffix.replace("_", "").isalnum() and suffix == suffix.upper()
    assert service_from_variable(suffix) == name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a dashed name ending in "com" warns, rightly
        policy = policy_from_env({"MESHCLIENT_ENDPOINTS_" + suffix: "127.0.0.2:80"})
    assert list(policy.services) == [name]
