"""The only reader of `os.environ`: the `MESHCLIENT_*` variables, in one table.

Invalid values raise `PolicyError` at start-up naming the variable and the value (no silent
clamping); an unknown `MESHCLIENT_*` name is warned about, since it is most likely a typo.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .._addresses import split_address
from ..errors import PolicyError
from ._duration import parse_duration
from ._envnames import service_from_variable, unreachable, warn_at_caller
from ._fields import control_error
from ._model import CODEC, EndpointSpec, Policy, ServicePolicy
from ._parse import load_policy_file, policy_from_text

PREFIX = "MESHCLIENT_"
ENDPOINTS_PREFIX = "MESHCLIENT_ENDPOINTS_"
SECRET_PREFIX = "MESHCLIENT_SECRET_"


@dataclass(frozen=True, slots=True)
class EnvVar:
    """One documented variable."""

    name: str
    default: str
    doc: str


#: Every variable meshclient reads; docs/reference/environment.md is generated from it.
VARIABLES: tuple[EnvVar, ...] = (
    EnvVar("MESHCLIENT_POLICY", "(unset)", "Path to a JSON or TOML policy file, or inline JSON "
           "(a value starting with `{`)."),
    EnvVar("MESHCLIENT_ENDPOINTS_<SERVICE>", "(unset)", "Comma-separated `host:port` endpoints "
           "of a service; `<SERVICE>` is the name upper-cased with `.` written as `__` and "
           "`-` as `_` (`MESHCLIENT_ENDPOINTS_API__EXAMPLE__COM` is `api.example.com`, "
           "`MESHCLIENT_ENDPOINTS_USERS_V2` is `users-v2`). Replaces the endpoints the policy "
           "gives that service, or adds the service; adding one no request would reach (not "
           "a host name, or a dotted name spelled with single `_`) is warned about."),
    EnvVar("MESHCLIENT_SERVICE", "(unset)", "This process's own service name."),
    EnvVar("MESHCLIENT_ZONE", "(unset)", "This process's zone, for zone-aware balancing."),
    EnvVar("MESHCLIENT_CONTROL_URL", "(unset)", "Control endpoint the policy refreshes from: "
           "`http(s)://…` (polled with ETag/Last-Modified; long-polled when it answers "
           "`X-Consul-Index`) or `etcd://host:port/key` (watched). See docs/control.md."),
    EnvVar("MESHCLIENT_CONTROL_INTERVAL", "10s", "Polling interval for the control endpoint "
           "(jittered)."),
    EnvVar("MESHCLIENT_CONTROL_TOKEN", "(unset)", "Bearer token sent to the control endpoint."),
    EnvVar("MESHCLIENT_POLICY_CACHE", "(unset)", "File keeping the last good policy across "
           "restarts."),
    EnvVar("MESHCLIENT_DNS_NAMESERVERS", "(system)", "Comma-separated `host:port` DNS servers "
           "overriding the system resolver."),
    EnvVar("MESHCLIENT_ADMIN", "(off)", "`host:port` of the admin/status endpoint (loopback "
           "only unless a non-loopback host is named)."),
    EnvVar("MESHCLIENT_ADMIN_TOKEN", "(unset)", "Bearer token the admin endpoint requires "
           "(compared in constant time); `meshclient status` sends it. Unset: none required."),
    EnvVar("MESHCLIENT_ADMIN_HOSTS", "(unset)", "Comma-separated extra host names the admin "
           "endpoint answers to; loopback hosts and the host it binds are always accepted, any "
           "other `Host` header gets 403 (DNS rebinding). See docs/security.md."),
    EnvVar("MESHCLIENT_SECRET_ENV", "MESHCLIENT_SECRET_*", "Comma-separated environment "
           "variable names (`*` matches any characters) a policy from a control endpoint or "
           "etcd may name as `token_env` / `client_secret_env`. See docs/security.md."),
    EnvVar("MESHCLIENT_SECRET_PATHS", "/run/secrets,/var/run/secrets,/vault/secrets",
           "Comma-separated absolute directories (or files) a policy from a control endpoint "
           "or etcd may name secret files under (`token_file`, `client_secret_file`)."),
    EnvVar("MESHCLIENT_SECRET_<NAME>", "(unset)", "A secret that policies from a control "
           "endpoint or etcd may name by default (see `MESHCLIENT_SECRET_ENV`)."),
    EnvVar("MESHCLIENT_XDS_BOOTSTRAP", "(unset)", "xDS bootstrap for this process: a path, or "
           "the JSON inline (a value starting with `{`). Wins over `GRPC_XDS_BOOTSTRAP` and "
           "`GRPC_XDS_BOOTSTRAP_CONFIG`. See docs/xds.md."),
    EnvVar("GRPC_XDS_BOOTSTRAP", "(unset)", "Path of the xDS bootstrap, as gRPC reads it "
           "(istio-agent sets it for proxyless workloads). Its presence turns xDS on."),
    EnvVar("GRPC_XDS_BOOTSTRAP_CONFIG", "(unset)", "The xDS bootstrap JSON inline, as gRPC "
           "reads it (used when `GRPC_XDS_BOOTSTRAP` is unset)."),
    EnvVar("MESHCLIENT_XDS_HOSTS", "*.svc.cluster.local,*.svc", "Comma-separated host patterns "
           "(`*` matches any characters) whose requests are resolved through xDS when a "
           "bootstrap is present; other hosts pass through as without xDS."),
    EnvVar("MESHCLIENT_XDS_WAIT", "5s", "Longest a first request to a new xDS host waits for "
           "its listener, routes, clusters and endpoints; then it passes through."),
    EnvVar("MESHCLIENT_ACCESS_LOG", "(off)", "`stdout`, `stderr` or a file path: one JSON "
           "line per inbound and per outbound request (docs/access-log.md)."),
    EnvVar("MESHCLIENT_ACCESS_LOG_SAMPLE", "1", "Fraction of requests logged, from 0 to 1."),
    EnvVar("MESHCLIENT_ACCESS_LOG_OTEL", "0", "`1`: also emit each entry as an "
           "OpenTelemetry log record (through the global logger provider)."),
    EnvVar("MESHCLIENT_ACCESS_LOG_FLUSH_INTERVAL", "1s", "Longest an access-log line waits "
           "in the buffer before it is written (Envoy's `access_log_flush_interval`); above 0, "
           "at most 1h."),
    EnvVar("MESHCLIENT_ACCESS_LOG_BUFFER", "16384", "Access-log lines that may wait to be "
           "written; a line that finds the buffer full is dropped and counted. From 1 to "
           "1000000."),
)
_KNOWN = {v.name for v in VARIABLES if "<" not in v.name}
#: One-line values (unlike MESHCLIENT_POLICY, whose inline JSON may span lines); the error
#: does not repeat the value, which may be a secret.
_PLAIN_SETTINGS = ("MESHCLIENT_SERVICE", "MESHCLIENT_ZONE", "MESHCLIENT_CONTROL_URL",
                   "MESHCLIENT_CONTROL_TOKEN", "MESHCLIENT_POLICY_CACHE")


DEFAULT_XDS_HOSTS = ("*.svc.cluster.local", "*.svc")
_XDS_BOOTSTRAP_VARS = ("MESHCLIENT_XDS_BOOTSTRAP", "GRPC_XDS_BOOTSTRAP",
                       "GRPC_XDS_BOOTSTRAP_CONFIG")
_HOST_PATTERN = re.compile(r"^[A-Za-z0-9.\-*_]+$")


def _xds_hosts(value: str) -> tuple[str, ...]:
    items = tuple(item.strip().lower() for item in value.split(",") if item.strip())
    for item in items:
        if not _HOST_PATTERN.match(item):
            raise PolicyError(f"MESHCLIENT_XDS_HOSTS items must be host patterns (letters, "
                              f"digits, `.`, `-`, `*`): {item!r}")
    if not items:
        raise PolicyError(f"MESHCLIENT_XDS_HOSTS must name at least one pattern: {value!r}")
    return items


def _xds_bootstrap(env: Mapping[str, str]) -> tuple[str, str] | None:
    for name in _XDS_BOOTSTRAP_VARS:
        value = env.get(name)
        if value is not None and value.strip():
            return name, value
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvSettings:
    """Process settings from the environment (everything that is not the shared policy)."""

    service: str | None = None
    zone: str | None = None
    control_url: str | None = None
    control_interval: float = 10.0
    control_token: str | None = dataclasses.field(default=None, repr=False)
    policy_cache: str | None = None
    dns_nameservers: tuple[tuple[str, int], ...] = ()
    admin: tuple[str, int] | None = None
    #: (variable, value) of the xDS bootstrap in force, or None: xDS is off
    xds_bootstrap: tuple[str, str] | None = None
    xds_hosts: tuple[str, ...] = DEFAULT_XDS_HOSTS
    xds_wait: float = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessLogSettings:
    """Where access-log lines go (`stdout`, `stderr` or a path; None: off), the fraction of
    requests logged, whether they also go to OpenTelemetry's log bridge, and how they are
    buffered before they are written."""

    destination: str | None = None
    sample: float = 1.0
    otel: bool = False
    #: seconds a line may wait in the buffer before it is written
    flush_interval: float = 1.0
    #: lines that may wait to be written (one more is dropped)
    buffer: int = 16384


def _fraction(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"must be a number from 0 to 1: {value!r}") from None
    if not 0.0 <= number <= 1.0:  # NaN fails too
        raise ValueError(f"must be a number from 0 to 1: {value!r}")
    return number


def _flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"must be 1 or 0 (true or false): {value!r}")


def _flush_interval(value: str) -> float:
    seconds = parse_duration(value)
    if not 0.0 < seconds <= 3600.0:
        raise ValueError(f"must be a duration above 0 and at most 1h: {value!r}")
    return seconds


def _buffer(value: str) -> int:
    try:
        lines = int(value.strip())
    except ValueError:
        lines = 0
    if not 1 <= lines <= 1_000_000:
        raise ValueError(f"must be a whole number of lines from 1 to 1000000: {value!r}")
    return lines


def access_log_from_env(environ: Mapping[str, str] | None = None) -> AccessLogSettings:
    """Read the access-log settings; raises `PolicyError` naming the variable and value."""
    env = _environ(environ)
    destination = env.get("MESHCLIENT_ACCESS_LOG") or None
    if destination is not None and control_error("MESHCLIENT_ACCESS_LOG", destination):
        raise PolicyError("MESHCLIENT_ACCESS_LOG must not contain control characters: "
                          f"{destination!r}")
    sample = _read(env, "MESHCLIENT_ACCESS_LOG_SAMPLE", _fraction)
    otel = _read(env, "MESHCLIENT_ACCESS_LOG_OTEL", _flag)
    interval = _read(env, "MESHCLIENT_ACCESS_LOG_FLUSH_INTERVAL", _flush_interval)
    buffer = _read(env, "MESHCLIENT_ACCESS_LOG_BUFFER", _buffer)
    return AccessLogSettings(destination=destination, sample=1.0 if sample is None else sample,
                             otel=bool(otel), flush_interval=interval or 1.0,
                             buffer=buffer or 16384)


def _environ(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def _warn_unknown(environ: Mapping[str, str]) -> None:
    for name in environ:
        if name.startswith(PREFIX) and name not in _KNOWN and not name.startswith(
                (ENDPOINTS_PREFIX, SECRET_PREFIX)):
            warn_at_caller(f"unknown environment variable {name} (known: "
                           f"{', '.join(sorted(_KNOWN))}, MESHCLIENT_ENDPOINTS_<SERVICE>)")


def _addresses(name: str, value: str) -> tuple[tuple[str, int], ...]:
    out = []
    for item in value.split(","):
        try:
            out.append(split_address(item.strip()))
        except ValueError as exc:
            raise PolicyError(f"{name} {exc}") from None
    return tuple(out)


def _read(environ: Mapping[str, str], name: str, parse: Callable[[str], Any]) -> Any:
    value = environ.get(name)
    if value is None or value == "":
        return None
    try:
        return parse(value)
    except PolicyError:
        raise
    except ValueError as exc:
        raise PolicyError(f"{name} {exc}") from None


def settings_from_env(environ: Mapping[str, str] | None = None) -> EnvSettings:
    """Read the process settings; raises `PolicyError` naming the variable."""
    env = _environ(environ)
    for name in _PLAIN_SETTINGS:  # a CR/LF would reach a header (the token) or a URL
        if control_error(name, env.get(name)) is not None:
            raise PolicyError(f"{name} must not contain control characters (CR, LF, NUL …)")
    interval = _read(env, "MESHCLIENT_CONTROL_INTERVAL", parse_duration)
    if interval is not None and interval <= 0:
        raise PolicyError(f"MESHCLIENT_CONTROL_INTERVAL must be greater than 0: {interval!r}")
    control_url = env.get("MESHCLIENT_CONTROL_URL") or None
    if control_url and not control_url.startswith(("http://", "https://", "etcd://")):
        raise PolicyError("MESHCLIENT_CONTROL_URL must start with http://, https:// or "
                          f"etcd://: {control_url!r}")
    admin = _read(env, "MESHCLIENT_ADMIN",
                  lambda v: _addresses("MESHCLIENT_ADMIN", v)[0])
    xds_wait = _read(env, "MESHCLIENT_XDS_WAIT", parse_duration)
    if xds_wait is not None and xds_wait < 0:
        raise PolicyError(f"MESHCLIENT_XDS_WAIT must not be negative: {xds_wait!r}")
    return EnvSettings(
        service=env.get("MESHCLIENT_SERVICE") or None,
        zone=env.get("MESHCLIENT_ZONE") or None,
        control_url=control_url,
        control_interval=10.0 if interval is None else interval,
        control_token=env.get("MESHCLIENT_CONTROL_TOKEN") or None,
        policy_cache=env.get("MESHCLIENT_POLICY_CACHE") or None,
        dns_nameservers=_read(env, "MESHCLIENT_DNS_NAMESERVERS",
                              lambda v: _addresses("MESHCLIENT_DNS_NAMESERVERS", v)) or (),
        admin=admin,
        xds_bootstrap=_xds_bootstrap(env),
        xds_hosts=_read(env, "MESHCLIENT_XDS_HOSTS", _xds_hosts) or DEFAULT_XDS_HOSTS,
        xds_wait=5.0 if xds_wait is None else xds_wait,
    )


def _policy_source(value: str) -> Policy:
    if value.lstrip().startswith("{"):
        return policy_from_text(value, fmt="json", origin="inline JSON")
    return load_policy_file(value)


def policy_from_env(environ: Mapping[str, str] | None = None) -> Policy:
    """The policy the environment describes: `MESHCLIENT_POLICY`, then the
    `MESHCLIENT_ENDPOINTS_<SERVICE>` overrides. Raises `PolicyError`; warns on unknown names."""
    env = _environ(environ)
    _warn_unknown(env)
    try:
        policy = _read(env, "MESHCLIENT_POLICY", _policy_source) or Policy()
    except PolicyError as exc:
        raise PolicyError([f"MESHCLIENT_POLICY: {e}" for e in exc.errors]) from None
    services = dict(policy.services)
    unreached: list[str] = []
    for name, value in sorted(env.items()):
        if not name.startswith(ENDPOINTS_PREFIX) or not value.strip():
            continue
        service = service_from_variable(name[len(ENDPOINTS_PREFIX):])
        if not service:
            raise PolicyError(f"{name} must name a service after {ENDPOINTS_PREFIX}")
        reason = unreachable(service, policy.services)
        if reason is not None:
            unreached.append(f"{name} names the service {service!r}, {reason}")
        try:
            endpoints = tuple(EndpointSpec(address=f"[{h}]:{p}" if ":" in h else f"{h}:{p}")
                              for h, p in _addresses(name, value))
        except PolicyError as exc:
            raise PolicyError([e if e.startswith(name) else f"{name}: {e}"
                               for e in exc.errors]) from None
        spec = services.get(service) or ServicePolicy()
        services[service] = dataclasses.replace(spec, endpoints=endpoints, discovery=None)
    if services == dict(policy.services):
        return policy
    try:
        policy = dataclasses.replace(policy, services=services)
    except PolicyError as exc:
        raise PolicyError([f"{ENDPOINTS_PREFIX}*: {e}" for e in exc.errors]) from None
    for message in unreached:
        warn_at_caller(message)
    return policy


CODEC.from_env = policy_from_env


# -- the trust settings (docs/security.md) ---------------------------------------------

DEFAULT_SECRET_ENV = (SECRET_PREFIX + "*",)
DEFAULT_SECRET_PATHS = ("/run/secrets", "/var/run/secrets", "/vault/secrets")
_ENV_PATTERN = re.compile(r"^[A-Za-z0-9_*]+$")
_HOST_NAME = re.compile(r"^[A-Za-z0-9.\-]+$")


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustSettings:
    """What this process lets remote policies and admin clients do (docs/security.md)."""

    secret_env: tuple[str, ...] = DEFAULT_SECRET_ENV
    secret_paths: tuple[str, ...] = DEFAULT_SECRET_PATHS
    admin_token: str | None = dataclasses.field(default=None, repr=False)
    admin_hosts: tuple[str, ...] = ()


def _list(name: str, value: str, check: Callable[[str], bool], what: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in value.split(",") if item.strip())
    for item in items:
        if not check(item):
            raise PolicyError(f"{name} items must be {what}: {item!r}")
    return items


def trust_from_env(environ: Mapping[str, str] | None = None) -> TrustSettings:
    """Read the trust settings; raises `PolicyError` naming the variable and the value."""
    env = _environ(environ)
    secret_env = env.get("MESHCLIENT_SECRET_ENV")
    secret_paths = env.get("MESHCLIENT_SECRET_PATHS")
    hosts = env.get("MESHCLIENT_ADMIN_HOSTS")
    return TrustSettings(
        secret_env=DEFAULT_SECRET_ENV if secret_env is None else _list(
            "MESHCLIENT_SECRET_ENV", secret_env, lambda v: bool(_ENV_PATTERN.match(v)),
            "variable names (letters, digits, `_`, `*`)"),
        secret_paths=DEFAULT_SECRET_PATHS if secret_paths is None else _list(
            "MESHCLIENT_SECRET_PATHS", secret_paths, os.path.isabs, "absolute paths"),
        admin_token=env.get("MESHCLIENT_ADMIN_TOKEN") or None,
        admin_hosts=() if hosts is None else tuple(h.lower().rstrip(".") for h in _list(
            "MESHCLIENT_ADMIN_HOSTS", hosts, lambda v: bool(_HOST_NAME.match(v)),
            "host names")),
    )


def env_value(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """One variable's value (a secret a policy names): the single door to `os.environ`."""
    return _environ(environ).get(name)
