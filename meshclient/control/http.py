"""The HTTP(S) control source: one conditional (or long-polling) GET, body bounded.

TLS is verified (httpx's default CA bundle, or `verify=` a path / `ssl.SSLContext`);
`token` goes out as `Authorization: Bearer …`; a body over `MAX_BODY_BYTES` is refused
while it is read, so a runaway endpoint cannot fill memory.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import httpx

from .errors import ControlError
from .refresh import FetchPlan

MAX_BODY_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Fetched:
    """An answer: status (200 or 304), lower-cased headers, body (empty for 304)."""

    status: int
    headers: dict[str, str]
    body: bytes


class HttpSource:
    """Blocking fetches of one URL. Thread-safe; used by one `RefreshThread`."""

    def __init__(self, url: str, *, token: str | None = None,
                 verify: bool | str | ssl.SSLContext = True) -> None:
        self.url = url
        headers = {"Accept": "application/json, application/toml;q=0.9, */*;q=0.1"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if isinstance(verify, str):  # a CA bundle path (httpx deprecates passing it as str)
            verify = ssl.create_default_context(cafile=verify)
        self._client = httpx.Client(headers=headers, verify=verify, trust_env=False,
                                    follow_redirects=False)

    def fetch(self, plan: FetchPlan) -> Fetched:
        """Raise `ControlError` for anything but a 200 (with a bounded body) or a 304."""
        try:
            with self._client.stream("GET", self.url, headers=plan.headers,
                                     params=plan.params or None,
                                     timeout=httpx.Timeout(plan.timeout_s)) as response:
                headers = {k.lower(): v for k, v in response.headers.items()}
                if response.status_code == 304:
                    return Fetched(304, headers, b"")
                if response.status_code != 200:
                    raise ControlError(f"{self.url} answered {response.status_code}")
                declared = headers.get("content-length", "")
                if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
                    raise ControlError(f"{self.url}: body of {declared} bytes is over the "
                                       f"{MAX_BODY_BYTES}-byte limit")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_BODY_BYTES:
                        raise ControlError(f"{self.url}: body is over the {MAX_BODY_BYTES}-"
                                           "byte limit")
                return Fetched(200, headers, bytes(body))
        except httpx.HTTPError as exc:
            raise ControlError(f"{self.url} failed: {exc!r}") from exc

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"<HttpSource {self.url}>"
