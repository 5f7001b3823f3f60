"""`url.full` without secrets, as the HTTP semantic conventions ask of it.

- Credentials in the URL (`https://user:pass@host/`) are never recorded: the userinfo
  becomes `REDACTED:REDACTED` (the conventions' form, which still shows that the URL
  carried credentials).
- The VALUE of each query parameter whose key is in `sensitive_query_keys()` becomes
  `REDACTED`; the key, the order and every other parameter are kept as sent.

The conventions name `AWSAccessKeyId`, `Signature`, `sig` and `X-Goog-Signature`;
meshclient adds the keys that carry bearer secrets in practice (`access_token`,
`api_key`, `password`, `client_secret`, the OAuth `code`, …: `DEFAULT_SENSITIVE_KEYS`).
Keys compare case-insensitively. `add_sensitive_query_keys("x-my-key")` extends the set
for the whole process.
"""

from __future__ import annotations

import threading
from urllib.parse import unquote_plus

import httpx

from ..errors import MeshError

REDACTED = "REDACTED"

#: The conventions' list, then meshclient's additions (documented in docs/tracing.md).
DEFAULT_SENSITIVE_KEYS: frozenset[str] = frozenset({
    "AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature",
    "access_token", "refresh_token", "id_token", "token", "api_key", "apikey", "api-key",
    "key", "password", "passwd", "pwd", "secret", "client_secret", "code",
    "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", "X-Goog-Credential",
})


class RedactionError(MeshError, ValueError):
    """A sensitive key that cannot be one (the message names the value)."""


_lock = threading.Lock()
# Lower-cased keys; replaced whole (readers never lock).
_keys: frozenset[str] = frozenset(k.lower() for k in DEFAULT_SENSITIVE_KEYS)


def sensitive_query_keys() -> frozenset[str]:
    """The keys whose values are redacted now (lower case)."""
    return _keys


def add_sensitive_query_keys(*keys: str) -> None:
    """Also redact the values of these query keys (process-wide, case-insensitive)."""
    global _keys
    for key in keys:
        if not isinstance(key, str) or not key or any(c in key for c in "&=#"):
            raise RedactionError(f"sensitive query key must be a non-empty string without "
                                 f"'&', '=' or '#': {key!r}")
    with _lock:
        _keys = _keys | {k.lower() for k in keys}


def redact_query(query: str, keys: frozenset[str] | None = None) -> str:
    """`query` (the raw text after `?`) with the values of sensitive keys replaced.
    Keys are compared after percent-decoding, so `access%5Ftoken` is caught too."""
    sensitive = _keys if keys is None else keys
    parts = query.split("&")
    changed = False
    for i, part in enumerate(parts):
        name, eq, value = part.partition("=")
        if not eq or not value:
            continue
        plain = unquote_plus(name).lower() if "%" in name or "+" in name else name.lower()
        if plain in sensitive:
            parts[i] = f"{name}={REDACTED}"
            changed = True
    return "&".join(parts) if changed else query


def redact_url(url: httpx.URL) -> str:
    """`str(url)` fit for `url.full`: no userinfo, no sensitive query values."""
    raw_query = url.query
    if not url.userinfo and not raw_query:
        return str(url)  # the usual case: nothing to look at
    if url.userinfo:
        url = url.copy_with(username=REDACTED, password=REDACTED)
    if raw_query:
        query = raw_query.decode("ascii")
        redacted = redact_query(query)
        if redacted is not query:
            text = str(url)
            head, _, tail = text.partition("?")
            fragment = tail[len(query):]  # '#…' if any
            return f"{head}?{redacted}{fragment}"
    return str(url)
