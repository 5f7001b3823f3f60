"""Route regexes cannot backtrack catastrophically: RE2 when installed, else `re` with the
shapes that backtrack exponentially refused by a `PolicyError` naming the field."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshclient import Policy, PolicyError
from meshclient.policy import _regex
from meshclient.policy._regex import backtracking_problem, compile_python, compile_re2, load_re2

RE2 = load_re2()
needs_re2 = pytest.mark.skipif(RE2 is None, reason="google-re2 (module re2) is not installed")


def route(regex: str, where: str = "path") -> dict[str, Any]:
    match: dict[str, Any] = ({"path": {"regex": regex}} if where == "path"
                             else {where: {"x-a": {"regex": regex}}})
    return {"services": {"users": {"endpoints": ["127.0.0.2:80"],
                                   "routes": [{"match": match}]}}}


DANGEROUS = [
    ("(a+)+$", "repeats a group that contains a quantifier (nested quantifiers)"),
    ("(a*)*", "repeats a group that contains a quantifier (nested quantifiers)"),
    ("/x/(?:ab?){2,}", "repeats a group that contains a quantifier (nested quantifiers)"),
    ("((a)+)*", "repeats a group that contains a quantifier (nested quantifiers)"),
    ("(/[a-z]+)*", "repeats a group that contains a quantifier (nested quantifiers)"),
    ("(a|ab)*c", "repeats a group whose alternatives do not differ in their first character"),
    (r"(\w|\d)+$", "repeats a group whose alternatives do not differ in their first character"),
    ("(?i)(A|a)+", "repeats a group whose alternatives do not differ in their first character"),
    (r"(a)\1", "uses a backreference (\\1)"),
    ("(?P<x>a)(?P=x)", "uses a backreference ((?P=name) or a conditional)"),
    ("(a)?(?(1)b|c)", "uses a backreference ((?P=name) or a conditional)"),
    ("/(?=admin)a.*", "uses a lookaround ((?=, (?!, (?<= or (?<!)"),
    ("/(?!admin).*", "uses a lookaround ((?=, (?!, (?<= or (?<!)"),
    ("(?<=/)x", "uses a lookaround ((?=, (?!, (?<= or (?<!)"),
    ("(?<!/)x", "uses a lookaround ((?=, (?!, (?<= or (?<!)"),
    ("(?x) /a  # comment", "uses the verbose flag (?x)"),
]

SAFE = ["/v1/users/[0-9]+", "/api/(v1|v2)/.*", "(a+)?b", "(get|put)+", r"[\w-]+(/[\w-])*",
        "(?:a|b)*", r"\(a+\)+", r"(\.|/)+", "a{2,5}", "a{,}", "(?i:ab)+", "(?P<v>v[0-9])/.*",
        "[(]+(a)*", r"/files/[^/]+\.txt", ".*", "/a{}"]


@pytest.mark.parametrize(("pattern", "problem"), DANGEROUS)
def test_python_engine_refuses_what_backtracks(pattern: str, problem: str) -> None:
    matcher, errors = compile_python("regex", pattern)
    assert matcher is None
    assert errors == [f"regex {problem}, which can backtrack catastrophically; rewrite it or "
                      f"install meshclient[re2]: {pattern!r}"]


@pytest.mark.parametrize("pattern", SAFE)
def test_python_engine_keeps_ordinary_patterns(pattern: str) -> None:
    matcher, errors = compile_python("regex", pattern)
    assert errors == [] and matcher is not None
    assert matcher.fullmatch("") is None or pattern in (".*", "(?:a|b)*", "a{,}")


@pytest.mark.skipif(RE2 is not None, reason="with RE2 installed route regexes use RE2")
@pytest.mark.parametrize("where", ["path", "headers", "query"])
def test_policy_refuses_a_catastrophic_regex_by_field(where: str) -> None:
    with pytest.raises(PolicyError) as info:
        Policy.from_dict(route("(a+)+$", where))
    field = ("path.regex" if where == "path" else f"{where}.x-a.regex")
    (error,) = info.value.errors
    assert error.startswith(f"services.users.routes[0].match.{field} repeats a group that "
                            "contains a quantifier")
    assert error.endswith("'(a+)+$'")


def test_python_engine_reports_an_invalid_pattern() -> None:
    matcher, errors = compile_python("regex", "(unclosed")
    assert matcher is None
    assert errors[0].startswith("regex is not a valid regular expression (missing ), "
                                "unterminated subpattern")


@needs_re2
def test_re2_compiles_nested_quantifiers_and_matches_in_linear_time() -> None:
    matcher, errors = compile_re2("regex", "(a+)+$", RE2)
    assert errors == [] and matcher is not None
    started = time.monotonic()
    assert matcher.fullmatch("a" * 10_000 + "!") is None  # `re` would never finish this
    assert time.monotonic() - started < 1.0
    assert matcher.fullmatch("a" * 28) is not None


@needs_re2
@pytest.mark.parametrize("pattern", [r"(a)\1", "/(?=admin).*", "(?<!/)x"])
def test_re2_refuses_backreferences_and_lookarounds(pattern: str) -> None:
    matcher, errors = compile_re2("regex", pattern, RE2)
    assert matcher is None
    assert errors[0].startswith("regex is not a valid regular expression (RE2: ")
    assert errors[0].endswith(repr(pattern))


@needs_re2
@pytest.mark.parametrize("pattern", SAFE)
def test_re2_and_python_agree_on_ordinary_patterns(pattern: str) -> None:
    if pattern in ("/a{}", "a{,}"):
        pytest.skip("RE2 reads {} and {,} as literal text; Python reads {,} as *")
    ours, _ = compile_python("regex", pattern)
    theirs, errors = compile_re2("regex", pattern, RE2)
    assert errors == [] and ours is not None and theirs is not None
    for text in ["", "/v1/users/42", "aab", "getput", "a-b/c", "(aa)", "./", "/files/x.txt",
                 "v1/x", "AB", "aaaa"]:
        assert (ours.fullmatch(text) is None) == (theirs.fullmatch(text) is None), text


@needs_re2
def test_the_policy_uses_re2_when_installed() -> None:
    assert _regex.ENGINE == "re2"
    policy = Policy.from_dict(route("(a+)+$"))
    assert policy.services["users"].routes[0].match.path.matches("a" * 28)


# An independent oracle for the property test: Python's own parser of patterns.
_parser: Any = pytest.importorskip("re._parser") if hasattr(re, "_parser") else None
_REPEATS = {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}
_REFS = {"GROUPREF", "GROUPREF_EXISTS", "ASSERT", "ASSERT_NOT"}


def _oracle_dangerous(tree: Any, inside_repeat: bool = False) -> bool:
    """True when Python's parse tree shows a backreference, a lookaround, or a repeat
    (max > 1) inside a repeat (max > 1)."""
    for op, arg in tree:
        name = str(op)
        if name in _REFS:
            return True
        if name in _REPEATS:
            _lo, hi, sub = arg
            if inside_repeat:
                return True
            if _oracle_dangerous(sub, inside_repeat or hi > 1):
                return True
        elif name == "SUBPATTERN":
            if _oracle_dangerous(arg[-1], inside_repeat):
                return True
        elif name == "BRANCH":
            if any(_oracle_dangerous(b, inside_repeat) for b in arg[1]):
                return True
        elif name == "ATOMIC_GROUP" and _oracle_dangerous(arg, inside_repeat):
            return True
    return False


TOKENS = st.sampled_from(["a", "b", ".", r"\d", r"\w", "[ab]", "[^/]", "/", r"\.", "(", ")",
                          "(?:", "|", "*", "+", "?", "{2}", "{1,3}", "{2,}", "*?", r"\1",
                          "(?=", "(?!", "(?P<n>", "(?i)", "^", "$", "{", "}", "-", "]"])


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(st.lists(TOKENS, max_size=12).map("".join))
def test_the_check_refuses_every_pattern_python_parses_as_dangerous(pattern: str) -> None:
    problem = backtracking_problem(pattern)  # never raises, whatever the text
    try:
        tree = _parser.parse(pattern) if _parser is not None else None
    except re.error:
        return
    if tree is not None and _oracle_dangerous(tree.data if hasattr(tree, "data") else tree):
        assert problem is not None, pattern
