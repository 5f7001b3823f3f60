"""Mutual TLS from files, reloaded when they change, with SPIFFE ID verification.

Why a delegating context: httpx binds one `ssl.SSLContext` to a transport when it is built,
and reloading certificates into a live context (`load_cert_chain` twice: cert, then key) has
a window where a handshake could pair the new certificate with the old key. Instead,
`RotatingContext` is an `SSLContext` whose `wrap_socket` / `wrap_bio` delegate to the
*current* generation: a complete context built and validated from the files, swapped by one
reference assignment. New connections use the new material; pooled and in-flight
connections keep the generation they were opened with until they close.

The files are checked (one `os.stat` each) when a connection is opened, at most every
`reload` seconds; cert-manager and SPIRE replace files by renaming or by swapping a
symlink, and either changes the stat signature. A file that is missing, unreadable or whose
key does not match its certificate raises `TlsError` at start-up; at reload time the
previous generation stays in force and one warning is logged per bad state of the files.

Server verification: against the logical service name (the request's `sni_hostname`, set
by the core), or `server_name` when set; with `spiffe_id`, the host name check is replaced
by the SPIFFE rule for X.509-SVIDs: the chain must verify against `ca` and the leaf must
carry exactly one URI SAN, equal to `spiffe_id` (or inside its trust domain when
`spiffe_id` names only `spiffe://trust-domain`).
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from typing import Any

from .._clock import CLOCK
from .._types import Clock
from ..errors import MeshError
from ..policy import TlsPolicy

logger = logging.getLogger("meshclient.security")

Signature = tuple[tuple[int, int, int], ...]
_MISSING: Signature = ((-1, -1, -1),)  # a file is missing: remembered so it is logged once


class TlsError(MeshError):
    """TLS material could not be loaded (names the file and the reason)."""


def _signature(policy: TlsPolicy) -> Signature:
    out = []
    for path in (policy.ca, policy.cert, policy.key):
        if path is None:
            continue
        try:
            st = os.stat(path)
        except OSError as exc:
            raise TlsError(f"tls: cannot read {path!r}: {exc.strerror or exc}") from None
        out.append((st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(out)


def spiffe_matches(uri: str, expected: str) -> bool:
    """`expected` is a full SPIFFE ID (exact match), `spiffe://td` (any ID in the trust
    domain), or ends with `/*` (any ID under that path)."""
    if expected.endswith("/*"):
        return uri.startswith(expected[:-1])
    if expected.count("/") == 2:  # spiffe://trust-domain
        return uri.startswith(expected + "/")
    return uri == expected


def check_spiffe(cert: dict[str, Any] | None, expected: str) -> None:
    """Raise `ssl.SSLCertVerificationError` unless the verified peer certificate carries
    exactly one URI SAN matching `expected` (X.509-SVID rules)."""
    sans = (cert or {}).get("subjectAltName", ())
    uris = [value for kind, value in sans if kind == "URI"]
    if len(uris) != 1:
        raise ssl.SSLCertVerificationError(
            f"peer certificate has {len(uris)} URI SANs; an X.509-SVID has exactly one")
    if not spiffe_matches(uris[0], expected):
        raise ssl.SSLCertVerificationError(
            f"peer SPIFFE ID {uris[0]!r} does not match {expected!r}")


def _spiffe_classes(expected: str) -> tuple[type[ssl.SSLSocket], type[ssl.SSLObject]]:
    class SpiffeSocket(ssl.SSLSocket):
        def do_handshake(self, block: bool = False) -> None:
            super().do_handshake(block)
            check_spiffe(self.getpeercert(), expected)

    class SpiffeObject(ssl.SSLObject):
        def do_handshake(self) -> None:
            super().do_handshake()
            check_spiffe(self.getpeercert(), expected)

    return SpiffeSocket, SpiffeObject


def build_context(policy: TlsPolicy, alpn: list[str] | None = None) -> ssl.SSLContext:
    """A complete client context from the files; raises `TlsError` naming the bad file."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        if policy.ca is not None:
            ctx.load_verify_locations(cafile=policy.ca)
        else:
            ctx.load_default_certs()
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"tls.ca: cannot load CA bundle {policy.ca!r}: {_reason(exc)}") from None
    if policy.cert is not None and policy.key is not None:
        try:
            ctx.load_cert_chain(policy.cert, policy.key)
        except (OSError, ssl.SSLError) as exc:
            raise TlsError(f"tls.cert/tls.key: cannot load {policy.cert!r} with key "
                           f"{policy.key!r}: {_reason(exc)}") from None
    if policy.spiffe_id is not None:
        ctx.check_hostname = False  # replaced by the URI SAN check
        ctx.sslsocket_class, ctx.sslobject_class = _spiffe_classes(policy.spiffe_id)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    return getattr(exc, "strerror", None) or str(exc)


class RotatingContext(ssl.SSLContext):
    """An `SSLContext` for httpx (`verify=`) that follows the files of a `TlsPolicy`.

    Usage:
    ```python
    ctx = RotatingContext(TlsPolicy(ca="ca.pem", cert="tls.crt", key="tls.key"))
    inner = httpx.HTTPTransport(verify=ctx)
    ```

    Thread- and task-safe: `wrap_*` read one reference; at most one caller reloads at a time
    (others keep using the current generation meanwhile).
    """

    def __new__(cls, policy: TlsPolicy, clock: Clock = CLOCK) -> RotatingContext:
        return super().__new__(cls, ssl.PROTOCOL_TLS_CLIENT)

    def __init__(self, policy: TlsPolicy, clock: Clock = CLOCK) -> None:
        self.policy = policy
        self._clock = clock
        self._alpn: list[str] | None = None
        self._signature = _signature(policy)
        self._current = build_context(policy)
        self._reload_ns = int(policy.reload * 1e9)
        self._next_check_ns = clock.now_ns() + self._reload_ns
        self._failed: Signature | None = None
        self._reloading = threading.Lock()
        self.generation = 1

    @property
    def current(self) -> ssl.SSLContext:
        return self._current

    def maybe_reload(self) -> bool:
        """Rebuild from the files if they changed; True when a new generation is in force."""
        now = self._clock.now_ns()
        if now < self._next_check_ns or not self._reloading.acquire(blocking=False):
            return False
        try:
            self._next_check_ns = now + self._reload_ns
            try:
                signature = _signature(self.policy)
            except TlsError as exc:
                return self._keep(_MISSING, exc)
            if signature == self._signature or signature == self._failed:
                return False
            try:
                ctx = build_context(self.policy, self._alpn)
            except TlsError as exc:
                # `signature` was taken before reading: if the files changed again while
                # being read, the next check sees a new signature and tries once more.
                return self._keep(signature, exc)
            self._current, self._signature, self._failed = ctx, signature, None
            self.generation += 1
            logger.info("tls: loaded new material from %s (generation %d)",
                        self.policy.cert or self.policy.ca, self.generation)
            return True
        finally:
            self._reloading.release()

    def _keep(self, signature: Signature, exc: TlsError) -> bool:
        """Keep the current generation; log once per bad state of the files."""
        if signature != self._failed:
            logger.warning("%s; keeping the previous TLS material (generation %d)", exc,
                           self.generation)
        self._failed = signature
        return False

    def _server_name(self, server_hostname: str | bytes | None) -> str | bytes | None:
        return self.policy.server_name or server_hostname

    def set_alpn_protocols(self, alpn_protocols: Any) -> None:
        alpn = list(alpn_protocols)
        if alpn != self._alpn:
            self._alpn = alpn
            self._current.set_alpn_protocols(alpn)

    def wrap_socket(self, sock: Any, server_side: bool = False,
                    do_handshake_on_connect: bool = True, suppress_ragged_eofs: bool = True,
                    server_hostname: Any = None, session: Any = None) -> ssl.SSLSocket:
        self.maybe_reload()
        return self._current.wrap_socket(
            sock, server_side=server_side, do_handshake_on_connect=do_handshake_on_connect,
            suppress_ragged_eofs=suppress_ragged_eofs,
            server_hostname=self._server_name(server_hostname), session=session)

    def wrap_bio(self, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO,
                 server_side: bool = False, server_hostname: Any = None,
                 session: Any = None) -> ssl.SSLObject:
        self.maybe_reload()
        return self._current.wrap_bio(incoming, outgoing, server_side=server_side,
                                      server_hostname=self._server_name(server_hostname),
                                      session=session)

    def __repr__(self) -> str:
        return (f"<RotatingContext cert={self.policy.cert!r} generation={self.generation} "
                f"spiffe_id={self.policy.spiffe_id!r}>")
