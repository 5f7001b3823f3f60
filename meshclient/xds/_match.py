"""Envoy route matches -> meshclient `RouteMatch` documents (path, headers, query, fraction).

As in gRPC's xDS client (gRFC A28): a route whose match uses something a client cannot
evaluate (`tls_context`, `dynamic_metadata`, `filter_state`, `connect_matcher`,
`path_match_policy`, a pseudo-header other than `:method`) is skipped, so the next route
decides; a malformed match (no path specifier, a bad regex, a `range_match`) is an error.
`contains` and `ignore_case` matchers become anchored regular expressions.
"""

from __future__ import annotations

import re
from typing import Any

from envoy.config.route.v3 import route_components_pb2 as rc

from ._translate_common import Where, fraction_percent


def _ci(text: str, ignore_case: bool) -> str:
    return f"(?i){text}" if ignore_case else text


def string_match(where: Where, m: Any) -> dict[str, Any]:
    """A `StringMatcher` as a `ValueMatch` document."""
    kind = m.WhichOneof("match_pattern")
    ic = m.ignore_case
    if kind == "exact":
        return {"regex": _ci(re.escape(m.exact), True)} if ic else {"exact": m.exact}
    if kind == "prefix":
        return {"regex": _ci(re.escape(m.prefix) + ".*", True)} if ic else {"prefix": m.prefix}
    if kind == "suffix":
        return {"regex": _ci(".*" + re.escape(m.suffix), True)} if ic else {"suffix": m.suffix}
    if kind == "contains":
        return {"regex": _ci(".*" + re.escape(m.contains) + ".*", ic)}
    if kind == "safe_regex":
        return {"regex": m.safe_regex.regex}
    raise where.error(f"unsupported string matcher: {kind or 'none set'}")


def _header(where: Where, h: Any) -> dict[str, Any]:
    kind = h.WhichOneof("header_match_specifier")
    out: dict[str, Any]
    if kind is None:
        out = {"present": True}  # Envoy: a matcher with no specifier tests presence
    elif kind == "exact_match":
        out = {"exact": h.exact_match}
    elif kind == "safe_regex_match":
        out = {"regex": h.safe_regex_match.regex}
    elif kind == "present_match":
        out = {"present": h.present_match}
    elif kind == "prefix_match":
        out = {"prefix": h.prefix_match}
    elif kind == "suffix_match":
        out = {"suffix": h.suffix_match}
    elif kind == "contains_match":
        out = {"regex": ".*" + re.escape(h.contains_match) + ".*"}
    elif kind == "string_match":
        out = string_match(where.at("string_match"), h.string_match)
    else:
        raise where.at(kind).error("is not supported by meshclient")
    if h.invert_match:
        out["invert"] = True
    return out


def _path(where: Where, m: rc.RouteMatch) -> dict[str, Any] | None:
    """The path condition; {} for any path; None when the route cannot be evaluated."""
    kind = m.WhichOneof("path_specifier")
    ic = m.HasField("case_sensitive") and not m.case_sensitive.value
    if kind == "prefix":
        if not m.prefix:
            return {}
        return {"regex": _ci(re.escape(m.prefix) + ".*", True)} if ic else {"prefix": m.prefix}
    if kind == "path":
        return {"regex": _ci(re.escape(m.path), True)} if ic else {"exact": m.path}
    if kind == "safe_regex":
        return {"regex": m.safe_regex.regex}
    if kind == "path_separated_prefix":
        p = m.path_separated_prefix
        if not p.startswith("/") or p.endswith("/") or "?" in p or "#" in p:
            raise where.at(kind).error(f"must start with '/', not end with '/' and hold no "
                                       f"'?' or '#': {p!r}")
        return {"regex": _ci(re.escape(p) + "(/.*)?", ic)}
    if kind in ("connect_matcher", "path_match_policy"):
        return None
    raise where.error("a path specifier (prefix, path or safe_regex) is required")


def route_match(where: Where, m: rc.RouteMatch) -> dict[str, Any] | None:
    """The `RouteMatch` document of `m`, or None when the route is skipped."""
    if m.HasField("tls_context") or m.dynamic_metadata or m.filter_state:
        return None  # conditions a client cannot evaluate
    path = _path(where, m)
    if path is None:
        return None
    out: dict[str, Any] = {}
    if path:
        out["path"] = path
    headers: dict[str, Any] = {}
    methods: list[str] = []
    for i, h in enumerate(m.headers):
        here = where.at("headers").at(i)
        name = h.name.lower()
        if name == ":method" and h.WhichOneof("header_match_specifier") == "exact_match" and (
                not h.invert_match):
            methods.append(h.exact_match)
            continue
        if name.startswith(":"):
            return None  # a pseudo-header meshclient does not see as a header
        if name in headers:
            raise here.error(f"more than one matcher for header {h.name!r} is not supported")
        headers[name] = _header(here, h)
    if m.HasField("grpc"):
        if "content-type" in headers:
            raise where.at("grpc").error("cannot be combined with a content-type matcher")
        headers["content-type"] = {"prefix": "application/grpc"}
    if len(methods) > 1:
        raise where.at("headers").error(f"more than one :method matcher: {methods}")
    if methods:
        out["method"] = methods
    if headers:
        out["headers"] = headers
    query: dict[str, Any] = {}
    for i, q in enumerate(m.query_parameters):
        here = where.at("query_parameters").at(i)
        if q.name in query:
            raise here.error(f"more than one matcher for query parameter {q.name!r} is not "
                             "supported")
        if q.WhichOneof("query_parameter_match_specifier") == "string_match":
            query[q.name] = string_match(here.at("string_match"), q.string_match)
        else:
            query[q.name] = {"present": True}
    if query:
        out["query"] = query
    if m.HasField("runtime_fraction"):
        percent = fraction_percent(where.at("runtime_fraction.default_value"),
                                   m.runtime_fraction.default_value)
        if percent < 100:
            out["percent"] = percent
    return out
