"""Route regular expressions that cannot backtrack catastrophically.

A route regex runs on every request, against a path or header the caller controls, so a
pattern such as `(a+)+$` would let one request with a 30-character path hold a worker for
seconds. Envoy compiles route regexes with RE2, whose matching time is linear in the input.
meshclient does the same when Google's RE2 binding is installed (`pip install
'meshclient[re2]'`, module `re2`): every route regex is compiled by RE2 and must use RE2's
syntax (no backreferences or lookarounds).

Without RE2, patterns go to Python's `re`, which backtracks, so the shapes that make it
backtrack exponentially are refused with a `PolicyError` naming the field:

- a repeated group that contains a quantifier (`(a+)+`, `(a*)*`, `(?:ab?){2,}`): nested
  quantifiers; `(a+)?` is allowed, as `?` does not repeat;
- a repeated group with alternatives the first character cannot tell apart (`(a|ab)*`,
  `(\\w|-)+`): write a character class (`[\\w-]+`) or distinct literals (`(get|put)+`);
- backreferences (`\\1`, `(?P=name)`) and conditionals (`(?(1)a|b)`);
- lookarounds (`(?=`, `(?!`, `(?<=`, `(?<!`);
- the verbose flag (`(?x)`), whose comments this check does not read.

What remains can still be polynomial (`.*a.*a.*a$` on a long path), as in any backtracking
engine; install RE2 when route regexes come from people who do not write them carefully.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._fields import show


class Matcher(Protocol):
    """A compiled route regex (an `re.Pattern` or an RE2 pattern)."""

    def fullmatch(self, string: str) -> object | None: ...


def load_re2() -> Any:
    """`(re2 module, options)` when Google's RE2 binding is importable, else None."""
    try:
        module = importlib.import_module("re2")
    except ImportError:
        return None
    options = module.Options()
    options.log_errors = False  # the error comes back in the PolicyError instead
    return module, options


_RE2: Any = load_re2()
ENGINE = "re2" if _RE2 is not None else "re"

_REPEAT = re.compile(r"\{(\d*)(?:(,)(\d*))?\}")
_FLAGS = re.compile(r"\(\?([aiLmsux]*)(?:-([imsx]*))?([:)])")


@dataclass
class _Group:
    """What the scan knows about one open group (or the whole pattern)."""

    quantified: bool = False  # some atom inside carries a quantifier
    alternatives: list[str | None] = field(default_factory=lambda: [None])
    at_start: bool = True  # the next atom is the first of its alternative


def _quantifier(pattern: str, i: int) -> tuple[int, int | None] | None:
    """(end index, most repeats or None for unbounded) of a quantifier at `i`, or None."""
    if i >= len(pattern):
        return None
    char = pattern[i]
    if char in "*+":
        most: int | None = None
        end = i + 1
    elif char == "?":
        most, end = 1, i + 1
    elif char == "{" and (m := _REPEAT.match(pattern, i)) and m.group(0) != "{}":
        # As Python reads it: "{}" is literal, "{m}", "{m,}", "{,n}", "{m,n}" and "{,}" repeat.
        upper = m.group(3) if m.group(2) else m.group(1)
        most = int(upper) if upper else None
        end = m.end()
    else:
        return None
    if end < len(pattern) and pattern[end] in "?+":  # lazy or possessive
        end += 1
    return end, most


def _class_end(pattern: str, i: int) -> int:
    """Index after the character class starting at `pattern[i] == "["`."""
    j = i + 1
    if j < len(pattern) and pattern[j] == "^":
        j += 1
    if j < len(pattern) and pattern[j] == "]":
        j += 1
    while j < len(pattern) and pattern[j] != "]":
        j += 2 if pattern[j] == "\\" else 1
    return j + 1


def backtracking_problem(pattern: str) -> str | None:
    """Why `pattern` could backtrack catastrophically in Python's `re`, or None.

    `pattern` must already compile with `re`; the scan reads its groups, classes, escapes
    and quantifiers, and keeps no state beyond one entry per open group.
    """
    folded = False
    stack = [_Group()]
    i = 0
    while i < len(pattern):
        char = pattern[i]
        group = stack[-1]
        first: str | None = None  # a literal first character of an alternative
        inner_quantified = False
        if char == "\\":
            nxt = pattern[i + 1:i + 2]
            if nxt and nxt in "123456789":
                return f"uses a backreference (\\{nxt})"
            first = nxt if not nxt.isalnum() else None
            i += 2
        elif char == "[":
            i = _class_end(pattern, i)
        elif char == "(":
            if pattern.startswith(("(?=", "(?!", "(?<=", "(?<!"), i):
                return "uses a lookaround ((?=, (?!, (?<= or (?<!)"
            if pattern.startswith(("(?P=", "(?("), i):
                return "uses a backreference ((?P=name) or a conditional)"
            if pattern.startswith("(?#", i):
                i = pattern.find(")", i) % (len(pattern) + 1) + 1
                continue
            flags = _FLAGS.match(pattern, i)
            if flags and "x" in flags.group(1) + (flags.group(2) or ""):
                return "uses the verbose flag (?x)"
            if flags and "i" in flags.group(1):
                folded = True
            if flags and flags.group(3) == ")":  # global flags: no group
                i = flags.end()
                continue
            stack.append(_Group())
            if flags:  # (?:  (?i:  (?-i:
                i = flags.end()
            elif pattern.startswith("(?P<", i):  # a named group: skip to the '>'
                i = pattern.find(">", i) % (len(pattern) + 1) + 1
            elif pattern.startswith("(?>", i):  # an atomic group
                i += 3
            else:
                i += 1
            continue
        elif char == ")":
            if len(stack) == 1:
                return "has an unbalanced parenthesis"
            closed = stack.pop()
            group = stack[-1]
            inner_quantified = closed.quantified
            quant = _quantifier(pattern, i + 1)
            if quant is not None and (quant[1] is None or quant[1] > 1):
                if closed.quantified:
                    return "repeats a group that contains a quantifier (nested quantifiers)"
                starts = closed.alternatives
                if len(starts) > 1 and (None in starts or len(
                        {s.lower() if folded else s for s in starts if s}) < len(starts)):
                    return ("repeats a group whose alternatives do not differ in their "
                            "first character")
            i += 1
        elif char == "|":
            group.alternatives.append(None)
            group.at_start = True
            i += 1
            continue
        else:
            first = char if char not in ".^$" else None
            i += 1
        was_first = group.at_start
        if was_first:
            group.alternatives[-1] = first
            group.at_start = False
        quant = _quantifier(pattern, i)
        if quant is not None:
            group.quantified = True
            if was_first:  # `a?b|c`: an optional first atom decides nothing
                group.alternatives[-1] = None
            i = quant[0]
        if inner_quantified:
            group.quantified = True
    return None


def compile_regex(name: str, pattern: str) -> tuple[Matcher | None, list[str]]:
    """Compile a route regex with RE2 when installed, else with `re` after the check above.

    Returns the matcher and a list of error messages naming `name` and the pattern.
    """
    if _RE2 is not None:
        return compile_re2(name, pattern, _RE2)
    return compile_python(name, pattern)


def compile_re2(name: str, pattern: str, re2: Any) -> tuple[Matcher | None, list[str]]:
    """Compile with RE2 (`re2` is the `(module, options)` pair of `load_re2`)."""
    module, options = re2
    try:
        return module.compile(pattern, options), []
    except module.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        return None, [f"{name} is not a valid regular expression (RE2: {reason}): "
                      f"{show(pattern)}"]


def compile_python(name: str, pattern: str) -> tuple[Matcher | None, list[str]]:
    """Compile with `re`, refusing what `backtracking_problem` finds."""
    try:
        compiled = re.compile(pattern)
    except (re.error, OverflowError, RecursionError) as exc:
        return None, [f"{name} is not a valid regular expression ({exc}): {show(pattern)}"]
    problem = backtracking_problem(pattern)
    if problem is not None:
        return None, [f"{name} {problem}, which can backtrack catastrophically; rewrite it "
                      f"or install meshclient[re2]: {show(pattern)}"]
    return compiled, []
