"""Where things are: `host:port` addresses and discovery URLs. Pure parsers that import
nothing of meshclient, so the policy model and discovery can both use them.

Discovery URLs say which source, where, and what to ask it:

```
dns://name:port                 A and AAAA records of `name`, each with `port`
dns+srv://_http._tcp.name       SRV records (port, priority, weight) of `name`
file:///path/endpoints.json     a JSON list of endpoints, re-read when it changes
etcd://host:port/prefix         every key under `prefix` is one endpoint, followed by watch
```
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

KINDS = ("dns", "dns+srv", "file", "etcd")


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed discovery URL. `name` is the DNS name (dns, dns+srv), `port` the port (dns,
    etcd), `path` the file path or etcd prefix, `server` the etcd `host:port`."""

    kind: str
    url: str
    name: str = ""
    port: int = 0
    path: str = ""
    server: str = ""


def parse_url(url: str) -> Target:
    """Parse and validate; raises `ValueError` with the value in the message."""
    if not isinstance(url, str):
        raise ValueError(f"must be a string URL: {url!r}")
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in KINDS:
        raise ValueError(f"must start with {', '.join(k + '://' for k in KINDS)}: {url!r}")
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise ValueError(f"must not have a query or fragment: {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"has an invalid port: {url!r}") from None
    host = parts.hostname or ""
    if scheme == "dns":
        if not host or port is None or parts.path not in ("", "/"):
            raise ValueError(f"must be dns://name:port: {url!r}")
        return Target("dns", url, name=_dns_name(url, parts.netloc.rpartition(":")[0]), port=port)
    if scheme == "dns+srv":
        if not host or port is not None or parts.path not in ("", "/"):
            raise ValueError(f"must be dns+srv://_service._proto.name (no port): {url!r}")
        return Target("dns+srv", url, name=_dns_name(url, parts.netloc))
    if scheme == "file":
        if parts.netloc or not parts.path.startswith("/") or parts.path.endswith("/"):
            raise ValueError(f"must be file:///absolute/path: {url!r}")
        return Target("file", url, path=parts.path)
    if not host or port is None:
        raise ValueError(f"must be etcd://host:port/prefix: {url!r}")
    prefix = parts.path or "/"
    if not prefix.endswith("/"):
        prefix += "/"  # a directory: /mesh/users must not match /mesh/users-v2
    return Target("etcd", url, path=prefix, server=parts.netloc)


def _dns_name(url: str, name: str) -> str:
    if not name or len(name) > 253 or any(not label or len(label) > 63
                                          for label in name.rstrip(".").split(".")):
        raise ValueError(f"has an invalid DNS name: {url!r}")
    return name


def split_address(address: str) -> tuple[str, int]:
    """`"host:port"` or `"[v6]:port"` to `(host, port)`; raises `ValueError` naming the value."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not (port_text.isascii() and port_text.isdigit()):
        raise ValueError(f"must be host:port: {address!r}")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError(f"port must be between 1 and 65535: {address!r}")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"must be host:port: {address!r}")
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"has an invalid IPv6 address: {address!r}") from None
    elif ":" in host:
        raise ValueError(f"must put an IPv6 address in brackets: {address!r}")
    return host, port
