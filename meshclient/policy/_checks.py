"""Policy section for external checks: named providers a `CUSTOM` authorization rule (or
code) refers to, as Istio's meshConfig `extensionProviders` with `envoyExtAuthzHttp`.

```toml
[[extension_providers]]
name = "opa"
[extension_providers.ext_authz_http]
service = "127.0.0.1"
port = 9191
timeout = "200ms"
include_request_headers_in_check = ["x-tenant"]
headers_to_upstream_on_allow = ["x-user"]
fail_open = false
cache_ttl = "5s"
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from ._fields import HEADER_NAME, Model, host_error, setting, show

#: A provider name: what a `CUSTOM` rule writes in `provider`.
_PROVIDER_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.\-]{0,62}[A-Za-z0-9])?")


def _header_errors(name: str, values: tuple[str, ...]) -> list[str]:
    return [f"{name}[{i}] is not a valid header name: {show(v)}"
            for i, v in enumerate(values) if not HEADER_NAME.fullmatch(v)]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtAuthzHttpPolicy(Model):
    """An HTTP authorization service (Envoy's `ext_authz` HTTP service): it receives the
    request's method, path and selected headers, without the body; a 2xx answer allows
    the request, any other answer denies it with that status, headers and body."""

    service: str | None = setting(None, doc="Host of the authorization service (with "
                                  "`port`); or set `url`.")
    port: int | None = setting(None, doc="Port of `service`.", lo=1, hi=65535)
    url: str | None = setting(None, doc="Base URL of the service (http:// or https://), "
                              "instead of `service` and `port`.")
    path_prefix: str = setting("", doc="Prepended to the request's path in the check "
                               "request (Envoy's `path_prefix`).")
    timeout: float = setting(0.2, doc="Bound on one check request, connection included "
                             "(Envoy's ext_authz default, 200 ms).", above=0, hi=60,
                             duration=True)
    fail_open: bool = setting(False, doc="Allow the request when the service cannot be "
                              "reached or does not answer in time (Istio's `failOpen`).")
    status_on_error: int = setting(403, doc="Status of the denial when the service fails "
                                   "and `fail_open` is false (Envoy's `status_on_error`).",
                                   lo=200, hi=599)
    include_request_headers_in_check: tuple[str, ...] = setting(
        (), doc="Request headers sent to the service besides `authorization` (always "
        "sent), matched without regard to case.")
    headers_to_upstream_on_allow: tuple[str, ...] = setting(
        (), doc="Headers of an allowing answer added to (or replacing those of) the "
        "request on its way to the handler or upstream.")
    headers_to_downstream_on_deny: tuple[str, ...] = setting(
        (), doc="Headers of a denying answer passed to the caller (empty: all but "
        "hop-by-hop and framing headers, as Envoy does).")
    cache_ttl: float = setting(0.0, doc="How long a decision is reused for the same "
                               "caller and check request (0: every request is checked).",
                               lo=0, hi=3600, duration=True)
    cache_size: int = setting(10_000, doc="Most decisions kept (least recently used "
                              "dropped first).", lo=1, hi=10_000_000)

    def _check(self) -> list[str]:
        errors: list[str] = []
        if (self.url is None) == (self.service is None):
            errors.append("url or service must be set, not both")
        if self.service is not None:
            if self.port is None:
                errors.append(f"port must be set with service: {show(self.service)}")
            if (message := host_error(self.service)) is not None:
                errors.append(f"service {message}")
        if self.url is not None:
            errors += _url_errors(self.url)
        if self.path_prefix and not self.path_prefix.startswith("/"):
            errors.append(f"path_prefix must start with '/': {show(self.path_prefix)}")
        errors += _header_errors("include_request_headers_in_check",
                                 self.include_request_headers_in_check)
        errors += _header_errors("headers_to_upstream_on_allow",
                                 self.headers_to_upstream_on_allow)
        errors += _header_errors("headers_to_downstream_on_deny",
                                 self.headers_to_downstream_on_deny)
        return errors

    @property
    def base_url(self) -> str:
        """Where check requests go (without `path_prefix`)."""
        if self.url is not None:
            return self.url.rstrip("/")
        return f"http://{self.service}:{self.port}"


def _url_errors(url: str) -> list[str]:
    if not url.startswith(("http://", "https://")):
        return [f"url must be an http:// or https:// URL: {show(url)}"]
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        return [f"url is not a valid URL ({exc}): {show(url)}"]
    host = parts.hostname or ""
    if host.count(":") >= 2:  # an IPv6 literal, validated by urlsplit
        return []
    message = host_error(host)
    return [f"url {message}"] if message else []


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtensionProvider(Model):
    """A named external check (Istio's `extensionProviders` entry)."""

    name: str = setting(doc="The name a `CUSTOM` rule gives as its provider.")
    ext_authz_http: ExtAuthzHttpPolicy = setting(doc="An HTTP authorization service.")

    def _check(self) -> list[str]:
        if not _PROVIDER_NAME.fullmatch(self.name):
            return [f"name must be letters, digits, '.', '_' or '-' (at most 64): "
                    f"{show(self.name)}"]
        return []


def provider_errors(providers: tuple[ExtensionProvider, ...]) -> list[str]:
    """Cross-entry rules of `extension_providers`: names are unique."""
    seen: set[str] = set()
    errors = []
    for i, provider in enumerate(providers):
        if provider.name in seen:
            errors.append(f"extension_providers[{i}].name is used twice: "
                          f"{show(provider.name)}")
        seen.add(provider.name)
    return errors
