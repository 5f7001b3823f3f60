"""Static bearer tokens from an environment variable or a file, and the one reader of a
policy's secret sources (`read_secret`), used by every credential.

Secrets are never logged, never put in exception messages, and kept out of `repr()`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from .._clock import CLOCK
from .._types import Clock
from ..errors import MeshError
from ..policy import BearerPolicy, env_value

logger = logging.getLogger("meshclient.security")

_NS = 1_000_000_000
#: A token file larger than this is refused unread (a token is a few KiB at most).
MAX_SECRET_CHARS = 64 * 1024


class CredentialsError(MeshError):
    """A credential source is misconfigured (missing variable, unreadable file)."""


def read_secret(env: str | None, file: str | None, environ: Mapping[str, str] | None,
                what: str) -> str:
    """The secret's value; `CredentialsError` names the source, never the value."""
    if env is not None:
        value = env_value(env, environ)
        if not value:
            raise CredentialsError(f"{what}: environment variable {env} is not set")
        return value.strip()
    assert file is not None
    try:
        with open(file, encoding="utf-8") as f:
            value = f.read(MAX_SECRET_CHARS + 1)
    except UnicodeDecodeError:
        raise CredentialsError(f"{what}: {file!r} is not UTF-8 text") from None
    except OSError as exc:
        raise CredentialsError(f"{what}: cannot read {file!r}: {exc.strerror or exc}") from None
    if len(value) > MAX_SECRET_CHARS:
        raise CredentialsError(f"{what}: {file!r} is larger than {MAX_SECRET_CHARS} characters")
    value = value.strip()
    if not value:
        raise CredentialsError(f"{what}: {file!r} is empty")
    return value


class BearerCredentials:
    """`Bearer <token>`; a file is re-read when its mtime or size changes (checked at most
    once a second)."""

    def __init__(self, policy: BearerPolicy, environ: Mapping[str, str] | None = None,
                 clock: Clock = CLOCK) -> None:
        self._policy = policy
        self._environ = environ
        self._clock = clock
        self._value = "Bearer " + read_secret(policy.token_env, policy.token_file, environ,
                                              "auth.bearer")
        self._stat = self._file_stat()
        self._next_check_ns = clock.now_ns() + _NS

    def _file_stat(self) -> tuple[int, int] | None:
        if self._policy.token_file is None:
            return None
        try:
            st = os.stat(self._policy.token_file)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def header_value(self) -> str:
        now = self._clock.now_ns()
        if self._policy.token_file is not None and now >= self._next_check_ns:
            self._next_check_ns = now + _NS
            stat = self._file_stat()
            if stat is not None and stat != self._stat:
                try:
                    self._value = "Bearer " + read_secret(None, self._policy.token_file,
                                                          None, "auth.bearer")
                    self._stat = stat
                except CredentialsError as exc:
                    logger.warning("%s; keeping the previous token", exc)
        return self._value

    def __repr__(self) -> str:
        source = self._policy.token_env or self._policy.token_file
        return f"<BearerCredentials from {source!r}>"
