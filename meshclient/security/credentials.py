"""Outbound credentials: a bearer token from an environment variable or a file (`bearer`),
or an OAuth2 access token from the client credentials grant (RFC 6749 section 4.4).

OAuth2 tokens are cached and refreshed `refresh_before` their expiry. One refresh runs at a
time however many requests need it, across threads *and* asyncio tasks: the first caller
that finds the token due becomes the refresher; while a still-valid token exists the others
keep using it, and only callers holding no usable token wait for the refresh (threads on an
`Event`, tasks polling it every `POLL_S`, which works from any event loop and only happens
when no valid token exists).

A token request is bounded in wall-clock time: `timeout` for the whole exchange (async: exactly;
sync: checked between reads, each read bounded by `timeout` too) and `token.MAX_ANSWER_BYTES`
for the body. Any bad answer (an error status, a body that is not JSON or has no usable
`access_token`, an `expires_in` that is not a positive finite number of seconds, too large,
too slow) fails that refresh only: a still-valid token is kept, and the next token request
is made after a jittered backoff (`token.retry_delay_s`: from 0.5-1 s after the first
failure, doubling, at most 30 s). Meanwhile a request with no valid token fails at once with
`CredentialsUnavailable` saying why the last refresh failed.

The client authenticates with HTTP Basic (`client_secret_basic`, which RFC 6749 section
2.3.1 requires servers to support). Secrets and tokens are never logged, never put in
exception messages, and kept out of `repr()`.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import anyio
import httpx

from .._clock import CLOCK, RNG
from .._types import Clock, Rng
from ..errors import MeshTransportError
from ..policy import AuthPolicy, OAuth2Policy
from .bearer import BearerCredentials, CredentialsError, read_secret
from .token import MAX_ANSWER_BYTES, Token, TokenAnswerError, parse_answer, retry_delay_s

__all__ = ["BearerCredentials", "Credentials", "CredentialsError", "CredentialsUnavailable",
           "OAuth2Credentials", "credentials_for", "read_secret"]

logger = logging.getLogger("meshclient.security")

POLL_S = 0.005
_NS = 1_000_000_000


class CredentialsUnavailable(MeshTransportError):
    """No valid credential could be obtained for the request (the token endpoint failed)."""


class _Refresh:
    """One refresh in flight: who waits for it and what it produced."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None


class OAuth2Credentials:
    """Client-credentials tokens, cached and refreshed ahead of expiry, one refresh at a time.

    Usage:
    ```python
    creds = OAuth2Credentials(policy.oauth2)
    request.headers["authorization"] = creds.header_value_sync()     # or await ..._async()
    ```
    """

    def __init__(self, policy: OAuth2Policy, environ: Mapping[str, str] | None = None,
                 clock: Clock = CLOCK, rng: Rng = RNG) -> None:
        self._policy = policy
        self._clock = clock
        self._rng = rng
        secret = read_secret(policy.client_secret_env, policy.client_secret_file, environ,
                             "auth.oauth2.client_secret")
        basic = f"{urllib.parse.quote(policy.client_id, safe='')}:" \
                f"{urllib.parse.quote(secret, safe='')}"
        self._headers = {"authorization": "Basic " + base64.b64encode(basic.encode()).decode(),
                         "accept": "application/json"}
        self._form = {"grant_type": "client_credentials"}
        if policy.scopes:
            self._form["scope"] = " ".join(policy.scopes)
        self._token: Token | None = None
        self._refresh: _Refresh | None = None
        self._retry_at_ns = 0
        self._failures = 0
        self._last_error: BaseException | None = None
        self._lock = threading.Lock()
        self.refreshes = 0

    # -- deciding (no I/O) -------------------------------------------------------------
    def _claim(self) -> tuple[str | None, _Refresh | None, bool]:
        """(usable header value or None, the refresh to wait for or run, whether we run it)."""
        now = self._clock.now_ns()
        with self._lock:
            token = self._token
            usable = token.header_value if token is not None and now < token.expires_ns \
                else None
            due = token is None or now >= token.refresh_ns
            if not due or now < self._retry_at_ns:  # fresh, or backing off after a failure
                return usable, None, False
            if self._refresh is not None:
                return usable, self._refresh, False
            self._refresh = _Refresh()
            return usable, self._refresh, True

    def _finish(self, refresh: _Refresh, answer: tuple[int, bytes] | None,
                error: BaseException | None) -> None:
        """Record one refresh's outcome; always releases the waiters, whatever the answer."""
        token: Token | None = None
        try:
            now = self._clock.now_ns()
            if error is None and answer is not None:
                try:
                    token = parse_answer(answer[0], answer[1], now,
                                         self._policy.refresh_before)
                except TokenAnswerError as exc:
                    error = CredentialsUnavailable(str(exc))
            with self._lock:
                if token is not None:
                    self._token = token
                    self._failures = 0
                    self._retry_at_ns = 0
                    self.refreshes += 1
                else:
                    self._failures += 1
                    delay = retry_delay_s(self._failures, self._rng)
                    self._retry_at_ns = now + int(delay * _NS)
                refresh.error = error if token is None else None
                self._last_error = refresh.error
        finally:
            with self._lock:
                self._refresh = None
            refresh.done.set()
        if token is None:
            logger.warning("auth.oauth2: token request to %s failed: %s", self._policy.token_url,
                           _describe(error))

    def _result(self, error: BaseException | None) -> str:
        token = self._token
        if token is not None and self._clock.now_ns() < token.expires_ns:
            return token.header_value
        raise CredentialsUnavailable(
            f"no valid OAuth2 token from {self._policy.token_url}: {_describe(error)}")

    def _wait_s(self) -> float:
        """How long a caller without a token waits for a refresh another caller runs (the
        sync fetch is bounded between reads, so by at most twice the timeout)."""
        return 2 * self._policy.timeout + 1.0

    # -- the two shells ----------------------------------------------------------------
    def _fetch_sync(self) -> tuple[int, bytes]:
        started = time.monotonic()
        with httpx.Client(timeout=self._policy.timeout) as client, \
                client.stream("POST", self._policy.token_url, data=self._form,
                              headers=self._headers) as response:
            _check_length(response)
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                _check_progress(body, time.monotonic() - started, self._policy.timeout)
            return response.status_code, bytes(body)

    async def _fetch_async(self) -> tuple[int, bytes]:
        started = time.monotonic()
        with anyio.fail_after(self._policy.timeout):
            async with httpx.AsyncClient(timeout=self._policy.timeout) as client, \
                    client.stream("POST", self._policy.token_url, data=self._form,
                                  headers=self._headers) as response:
                _check_length(response)
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    _check_progress(body, time.monotonic() - started, self._policy.timeout)
                return response.status_code, bytes(body)

    @contextmanager
    def _refreshing(self, refresh: _Refresh) -> Iterator[list[tuple[int, bytes]]]:
        """Around the fetch of a refresh this caller claimed: the answer put in the list
        (or the error the fetch raised) finishes it; an interruption (cancelled, Ctrl-C)
        finishes it too, so waiters never hang, and propagates. A fetch's error is kept
        for the waiters and the caller (`_result`), not raised here."""
        answer: list[tuple[int, bytes]] = []
        try:
            yield answer
        except Exception as exc:
            self._finish(refresh, None, exc)
        except BaseException as exc:
            self._finish(refresh, None, exc)
            raise
        else:
            self._finish(refresh, answer[0], None)

    def header_value_sync(self) -> str:
        usable, refresh, mine = self._claim()
        if refresh is None:
            return usable if usable is not None else self._result(self._last_error)
        if mine:
            with self._refreshing(refresh) as answer:
                answer.append(self._fetch_sync())
        if usable is not None:
            return usable
        refresh.done.wait(self._wait_s())
        return self._result(refresh.error)

    async def header_value_async(self) -> str:
        usable, refresh, mine = self._claim()
        if refresh is None:
            return usable if usable is not None else self._result(self._last_error)
        if mine:
            with self._refreshing(refresh) as answer:
                answer.append(await self._fetch_async())
        if usable is not None:
            return usable
        deadline = time.monotonic() + self._wait_s()
        while not refresh.done.is_set() and time.monotonic() < deadline:
            await anyio.sleep(POLL_S)  # waiting is rare (no valid token); works on any loop
        return self._result(refresh.error)

    def __repr__(self) -> str:
        state = "none" if self._token is None else "cached"
        return f"<OAuth2Credentials client_id={self._policy.client_id!r} token={state}>"


def _check_length(response: httpx.Response) -> None:
    declared = response.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
        raise CredentialsUnavailable(f"token answer is over {MAX_ANSWER_BYTES} bytes")


def _check_progress(body: bytearray, elapsed_s: float, timeout_s: float) -> None:
    if len(body) > MAX_ANSWER_BYTES:
        raise CredentialsUnavailable(f"token answer is over {MAX_ANSWER_BYTES} bytes")
    if elapsed_s > timeout_s:
        raise CredentialsUnavailable(f"token answer took longer than {timeout_s:g} s")


def _describe(error: BaseException | None) -> str:
    if error is None:
        return "no answer"
    if isinstance(error, CredentialsUnavailable):
        return str(error)
    if isinstance(error, TimeoutError):
        return "token request timed out"
    return type(error).__name__


Credentials = BearerCredentials | OAuth2Credentials


def credentials_for(policy: AuthPolicy, environ: Mapping[str, str] | None = None,
                    clock: Clock = CLOCK, rng: Rng = RNG) -> Credentials:
    if policy.bearer is not None:
        return BearerCredentials(policy.bearer, environ, clock)
    assert policy.oauth2 is not None
    return OAuth2Credentials(policy.oauth2, environ, clock, rng)
