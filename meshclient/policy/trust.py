"""The trust model: what a policy from a remote source (an HTTP control endpoint, etcd, or
the disk cache of either) may do, compared with the local policy (code, `MESHCLIENT_POLICY`,
`MESHCLIENT_ENDPOINTS_*`). docs/security.md explains the model and why.

Two places enforce it:

- **When a remote policy arrives** (`RemoteTrust.errors`, called by the `Applier` (`policy.apply`)
  before a swap): a remote policy is rejected whole, with one `field.path: reason` per
  problem, when it
  - turns a service the local policy declares `https` into `http`;
  - names a secret (`token_env`, `token_file`, `client_secret_env`, `client_secret_file`,
    a JWT issuer's `secret_env`, `secret_file`)
    that is neither on the local allowlist (`MESHCLIENT_SECRET_ENV`,
    `MESHCLIENT_SECRET_PATHS`) nor named by the local policy itself; the mesh's own
    variables (`MESHCLIENT_CONTROL_TOKEN`, `MESHCLIENT_ADMIN_TOKEN`, …) never are;
  - sets `tls.server_name` or `tls.spiffe_id` (who the server must prove to be) other than
    as the local policy sets them for that service.
- **On https:// requests** (`https_name`, called where a request is addressed to an
  endpoint, only when the destination is plain http or is not the request's own host):
  provenance is by identity, the resolved service object belongs to a remote policy a
  `RemoteTrust` let through or not. A request the app sent over https never leaves as
  plain http to a remote service the local policy does not declare `http` (else
  `SchemeDowngrade`); and when a remote policy routes it to a service the local policy
  does not declare, the server must prove the name the app asked for (the request's host),
  not a name the remote policy chose. Services of local policies are never affected.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import threading
import weakref
from collections.abc import Iterator
from typing import NamedTuple

import httpx

from ..errors import MeshTransportError
from ._env import VARIABLES, TrustSettings, env_value, trust_from_env
from ._model import Policy, Service

logger = logging.getLogger("meshclient.security")

_OWN_VARIABLES = frozenset(v.name for v in VARIABLES if "<" not in v.name)


class SchemeDowngrade(MeshTransportError, httpx.UnsupportedProtocol):
    """An https:// request would have left as plain http to a service that no local policy
    declares plaintext."""


class _Applied(NamedTuple):
    """A remote policy that passed the checks, with the local baseline it was checked
    against."""

    policy: Policy
    local_plain: frozenset[str]     # services the local policy declares `http`
    local_declared: frozenset[str]  # every service the local policy declares


#: Remote policies remembered per refresher: a request in flight under one of the last
#: this many is still recognised as remote.
RECENT = 16
_lock = threading.Lock()
_trusts: weakref.WeakSet[RemoteTrust] = weakref.WeakSet()


def _provenance(service: Service) -> _Applied | None:
    """The remote policy `service` (a resolved service object) comes from, if any."""
    with _lock:
        trusts = list(_trusts)
    for trust in trusts:
        for applied in trust.recent:
            if applied.policy.resolved.get(service.name) is service:
                return applied
    return None


def https_name(host: str, service: Service) -> str:
    """For a request the app sent over https to `host`, destined for `service`: the name the
    server's certificate must carry. Raises `SchemeDowngrade` when the request would leave
    as plain http to a service a remote policy made plaintext and the local policy did
    not. (Called only when `service` is plain http or not `host` itself.)"""
    applied = _provenance(service)
    if applied is None:  # a local policy's service: the application's own choice
        return service.name
    if service.scheme == "http":
        if service.name not in applied.local_plain:
            raise SchemeDowngrade(
                f"https://{host}/ would leave as plain http: service {service.name!r} has "
                f"scheme 'http' from a remote policy; declare it in the local policy to "
                f"allow that", service=service.name)
        return service.name
    return service.name if service.name in applied.local_declared else host


def _secret_fields(prefix: str, service: Service) -> Iterator[tuple[str, str, str]]:
    """(field path, 'env' or 'file', value) for every secret source of a resolved service."""
    auth = service.auth
    if auth is None:
        return
    where = prefix if service.spec.auth is not None else "defaults"
    for section, env, file in ((auth.bearer, "token_env", "token_file"),
                               (auth.oauth2, "client_secret_env", "client_secret_file")):
        if section is None:
            continue
        name = "bearer" if section is auth.bearer else "oauth2"
        for kind, attr in (("env", env), ("file", file)):
            value = getattr(section, attr)
            if value is not None:
                yield f"{where}.auth.{name}.{attr}", kind, value


def _authn_secret_fields(policy: Policy) -> Iterator[tuple[str, str, str]]:
    """(field path, 'env' or 'file', value) for the shared secrets of JWT issuers."""
    authn = policy.authentication
    for i, rule in enumerate(authn.jwt if authn is not None else ()):
        for kind, attr in (("env", "secret_env"), ("file", "secret_file")):
            value = getattr(rule, attr)
            if value is not None:
                yield f"authentication.jwt[{i}].{attr}", kind, value


def _under(path: str, roots: tuple[str, ...]) -> bool:
    real = os.path.realpath(path)
    for root in roots:
        base = os.path.realpath(root)
        if real == base or real.startswith(base.rstrip(os.sep) + os.sep):
            return True
    return False


def check_remote(remote: Policy, local: Policy, settings: TrustSettings) -> list[str]:
    """What `remote` may not do, given the local policy and settings (empty: nothing)."""
    errors: list[str] = []
    local_secrets = {(kind, value) for name, service in local.resolved.items()
                     for _, kind, value in _secret_fields(f"services.{name}", service)}
    local_secrets |= {(kind, value) for _, kind, value in _authn_secret_fields(local)}

    def check_secrets(fields: Iterator[tuple[str, str, str]]) -> None:
        for path, kind, value in fields:
            if (kind, value) in local_secrets:
                continue
            if kind == "env" and (value in _OWN_VARIABLES or not any(
                    fnmatch.fnmatchcase(value, p) for p in settings.secret_env)):
                errors.append(f"{path}: a remote policy may read only environment variables "
                              f"matching MESHCLIENT_SECRET_ENV "
                              f"({','.join(settings.secret_env)}): {value!r}")
            elif kind == "file" and not _under(value, settings.secret_paths):
                errors.append(f"{path}: a remote policy may read only files under "
                              f"MESHCLIENT_SECRET_PATHS ({','.join(settings.secret_paths)}): "
                              f"{value!r}")

    check_secrets(_authn_secret_fields(remote))
    for name, service in sorted(remote.resolved.items()):
        prefix = f"services.{name}"
        mine = local.resolved.get(name)
        if service.scheme == "http" and mine is not None and mine.scheme == "https":
            errors.append(f"{prefix}.scheme: a remote policy may not downgrade a service the "
                          f"local policy declares https to plain http: 'http'")
        check_secrets(_secret_fields(prefix, service))
        tls, local_tls = service.tls, mine.tls if mine is not None else None
        for attr in ("server_name", "spiffe_id"):
            chosen = getattr(tls, attr) if tls is not None else None
            if chosen is not None and chosen != (
                    getattr(local_tls, attr) if local_tls else None):
                where = prefix if service.spec.tls is not None else "defaults"
                errors.append(f"{where}.tls.{attr}: a remote policy may not choose who "
                              f"{name!r} must prove to be unless the local policy does the "
                              f"same: {chosen!r}")
    return sorted(set(errors))


class RemoteTrust:
    """The local baseline of one store that follows a remote source, the check of each
    remote policy against it, and the remote policies it let through (`recent`).

    The baseline is the store's policy when the refresher was built, and again whenever
    the store holds a policy this refresher did not apply (the application replaced it:
    local again). Thread-safe.
    """

    def __init__(self, current: Policy) -> None:
        self._applied: Policy | None = None
        self._local = current
        self.recent: tuple[_Applied, ...] = ()  # newest first; replaced whole
        with _lock:
            _trusts.add(self)

    def __repr__(self) -> str:
        applied = None if self._applied is None else self._applied.version
        return (f"<RemoteTrust local={self._local.version!r} applied={applied!r} "
                f"recent={len(self.recent)}>")

    def errors(self, remote: Policy, current: Policy) -> list[str]:
        """Why `remote` may not replace `current` (empty: it may, and its services are
        known as remote from now on)."""
        if current is not self._applied and current is not self._local:
            self._local = current
        local = self._local
        errors = check_remote(remote, local, trust_from_env())
        if not errors:
            entry = _Applied(remote, frozenset(n for n, s in local.resolved.items()
                                               if s.scheme == "http"),
                             frozenset(local.services))
            with _lock:
                self.recent = (entry, *self.recent[:RECENT - 1])
        return errors

    def applied(self, policy: Policy) -> None:
        """`policy` (a remote one) is now the store's."""
        self._applied = policy


_warned: set[str] = set()


def warn_plaintext_control(url: str) -> None:
    """Warn (once per URL) when `MESHCLIENT_CONTROL_TOKEN` goes to `url`, the
    environment's `MESHCLIENT_CONTROL_URL`, over plain http."""
    if not url.startswith("http://") or env_value("MESHCLIENT_CONTROL_URL") != url \
            or not env_value("MESHCLIENT_CONTROL_TOKEN"):
        return
    with _lock:
        if url in _warned:
            return
        _warned.add(url)
    logger.warning("MESHCLIENT_CONTROL_TOKEN is sent to %s over plain http: anyone on the "
                   "path can read it, and serve this process a policy; use https://", url)
