"""Service names spelled in environment variable names, and warnings that point at the caller.

Variable names carry only letters, digits and `_`, while service names are host names with
`-` and `.`. `MESHCLIENT_ENDPOINTS_<SERVICE>` therefore spells a dot as a double underscore
and a dash as a single one, so every service name an endpoint override can target has one
spelling (the convention of .NET's configuration keys, which write `:` as `__`):

    MESHCLIENT_ENDPOINTS_USERS                 users
    MESHCLIENT_ENDPOINTS_USERS_V2              users-v2
    MESHCLIENT_ENDPOINTS_API__EXAMPLE__COM     api.example.com
    MESHCLIENT_ENDPOINTS_API_V1__EXAMPLE__COM  api-v1.example.com

A request reaches a service when its URL's host is the service's name, so a variable
that names a service no request will use is most likely a misspelling, and is warned
about (`unreachable()`).
"""

from __future__ import annotations

import inspect
import re
import warnings
from collections.abc import Collection

#: Last labels that mark a dashed name as a domain written with `_` for `.`; a service
#: named `api-example-com` is reachable only at `http://api-example-com/`.
DOMAIN_SUFFIXES = frozenset({"com", "net", "org", "io", "local", "internal", "lan",
                             "localhost"})
_LABEL = re.compile(r"[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?")


def service_from_variable(suffix: str) -> str:
    """The service a `MESHCLIENT_ENDPOINTS_` suffix names: `__` is `.`, `_` is `-`."""
    return ".".join(part.lower().replace("_", "-") for part in suffix.split("__"))


def variable_for_service(name: str) -> str:
    """The `MESHCLIENT_ENDPOINTS_` suffix that names `name` (the inverse, where one exists)."""
    return "__".join(label.upper().replace("-", "_") for label in name.split("."))


def unreachable(name: str, known: Collection[str]) -> str | None:
    """Why no request would reach a service `name` added by an endpoints variable, or None.

    `known` are the services the policy defines. Three cases: the name is not a valid DNS
    host name (an empty label or one that starts or ends with `-`, written `___`); it is a
    policy service's dotted name spelled with single underscores; or it ends in a label
    that marks a domain (`com`, `internal`, `svc` …) yet has no dots.
    """
    if name in known:
        return None
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return "which is not a valid host name, so no request URL can name it"
    for other in known:
        if "." in other and other.replace(".", "-") == name:
            return (f"which the policy does not define; the policy's {other!r} is spelled "
                    f"MESHCLIENT_ENDPOINTS_{variable_for_service(other)}")
    if "." not in name and "-" in name and name.rsplit("-", 1)[1] in DOMAIN_SUFFIXES:
        dotted = name.replace("-", ".")
        return (f"which requests reach only at the host {name!r}; for {dotted!r} write "
                f"MESHCLIENT_ENDPOINTS_{variable_for_service(dotted)}")
    return None


def warn_at_caller(message: str) -> None:
    """`warnings.warn` attributed to the first frame outside meshclient (the application
    line that built the transport or the policy), however deep the call came from."""
    level = 1
    frame = inspect.currentframe()
    while frame is not None and str(frame.f_globals.get("__name__", "")).partition(".")[0] \
            == "meshclient":
        frame = frame.f_back
        level += 1
    del frame
    warnings.warn(message, UserWarning, stacklevel=level)
