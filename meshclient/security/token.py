"""An OAuth2 token endpoint's answer (RFC 6749 section 5.1) as a cached `Token`, and the
wait before the next token request after a failed one.

Pure: (status, body bytes, now) in, a `Token` out, or `TokenAnswerError` saying what was
wrong with the answer. Nothing here quotes the access token. A bad answer of any kind is
an error for that one refresh (the caller backs off and asks again); it never raises
anything but `TokenAnswerError`.

`expires_in` is a number of seconds from `MIN_EXPIRES_S` to `MAX_EXPIRES_S`; a numeric
string is accepted too (some servers send one). `NaN`, infinities, 0, negative or tiny
numbers (a token that expires as it arrives would be fetched again by every request),
booleans and other strings are refused. A missing `expires_in` means `DEFAULT_EXPIRES_S`
(RFC 6749 leaves the lifetime to the server's documentation then).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

from .._types import Rng
from ..errors import MeshError
from ..resilience.backoff import Backoff

#: Largest token answer read; a longer body fails the refresh.
MAX_ANSWER_BYTES = 64 * 1024
#: Lifetime assumed when the answer has no `expires_in`.
DEFAULT_EXPIRES_S = 300.0
#: Shortest and longest `expires_in` accepted (a tenth of a second, ten years).
MIN_EXPIRES_S = 0.1
MAX_EXPIRES_S = 10 * 365 * 86400.0
#: Wait after a failed token request: equal jitter in [window/2, window), the window doubling
#: from `RETRY_BASE_S` per consecutive failure up to `RETRY_MAX_S`.
RETRY_BASE_S = 1.0
RETRY_MAX_S = 30.0
_NS = 1_000_000_000
_BACKOFF = Backoff(RETRY_BASE_S, RETRY_MAX_S)
_VSCHAR = re.compile(r"^[\x20-\x7e]+$")  # RFC 6749 appendix A.12: access-token = 1*VSCHAR
_TOKEN68 = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")  # an auth-scheme is an HTTP token


class TokenAnswerError(MeshError, ValueError):
    """The token endpoint's answer is unusable; the message says why, never the token."""


@dataclass(frozen=True, slots=True)
class Token:
    """A usable credential: the header value, when it expires and when to refresh it (on
    the monotonic clock, ns)."""

    header_value: str = field(repr=False)
    expires_ns: int
    refresh_ns: int


def expires_in_s(value: object) -> float:
    """`expires_in` in seconds; raises `TokenAnswerError` naming the value."""
    if value is None:
        return DEFAULT_EXPIRES_S
    seconds: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:
            seconds = None
    elif isinstance(value, str) and len(value) <= 40:
        try:
            seconds = float(value.strip())
        except ValueError:
            seconds = None
    if seconds is None or not math.isfinite(seconds) or not (
            MIN_EXPIRES_S <= seconds <= MAX_EXPIRES_S):
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise TokenAnswerError(f"expires_in must be a number of seconds in [{MIN_EXPIRES_S}, "
                               f"{MAX_EXPIRES_S:.0f}]: {shown}")
    return seconds


def parse_answer(status: int, body: bytes, now_ns: int, refresh_before_s: float) -> Token:
    """The token in a 200 answer's JSON body; `TokenAnswerError` for anything else."""
    if status != 200:
        raise TokenAnswerError(f"token endpoint answered {status}")
    if len(body) > MAX_ANSWER_BYTES:
        raise TokenAnswerError(f"token answer is over {MAX_ANSWER_BYTES} bytes")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise TokenAnswerError("token answer is not JSON") from None
    if not isinstance(document, dict):
        raise TokenAnswerError(f"token answer must be a JSON object, not "
                               f"{type(document).__name__}")
    access = document.get("access_token")
    if not isinstance(access, str) or not access or not _VSCHAR.match(access):
        raise TokenAnswerError("token endpoint sent no usable access_token")
    kind = document.get("token_type", "Bearer")
    if not isinstance(kind, str) or not _TOKEN68.match(kind) or len(kind) > 64:
        raise TokenAnswerError("token_type must be an HTTP auth scheme such as Bearer")
    expires_s = expires_in_s(document.get("expires_in"))
    scheme = "Bearer" if kind.lower() == "bearer" else kind
    expires_ns = now_ns + int(expires_s * _NS)
    refresh_ns = expires_ns - int(min(refresh_before_s, expires_s / 2) * _NS)
    return Token(f"{scheme} {access}", expires_ns, refresh_ns)


def retry_delay_s(failures: int, rng: Rng) -> float:
    """Wait before the next token request after `failures` consecutive failed ones: in
    [window/2, window), window = min(RETRY_BASE_S * 2^(failures-1), RETRY_MAX_S)."""
    window = _BACKOFF.window(failures)
    return window / 2 + rng.random() * window / 2
