"""DNS: A/AAAA (`dns://name:port`) and SRV (`dns+srv://_http._tcp.name`) with dnspython.

- The system's resolver configuration is used by default (`/etc/resolv.conf`: nameservers,
  search domains, ndots); a name without a trailing dot goes through the search list, as
  `getaddrinfo` would treat it. Nameservers can be overridden (`host:port` list) by the
  policy (`discovery.nameservers`) or `MESHCLIENT_DNS_NAMESERVERS`, in that order.
- No dnspython cache: the endpoint cache is the cache, and it honours the TTL.
- A/AAAA: both are asked; one type missing is normal. NXDOMAIN for the name (or no record
  of either type) is an empty answer with `exists=False`; timeouts and SERVFAIL are errors.
- SRV (RFC 2782): each record gives port, priority and weight. Target addresses come from
  the additional section when the server sends them (Consul, CoreDNS and dnsmasq do),
  else from an A/AAAA lookup of the target. The TTL is the smallest of the records used.
  Weights are the balancer's weights; weight 0 ("almost never", RFC 2782) becomes 1, as the
  balancer's smallest weight. Priority groups are chosen in `_select.py`, not here.
"""

from __future__ import annotations

import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from .endpoint import DiscoveryError, Endpoint, Resolution

_GONE = (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer)
RESOLV_CONF = "/etc/resolv.conf"


def make_resolver(nameservers: tuple[tuple[str, int], ...], timeout_s: float,
                  resolv_conf: str = RESOLV_CONF) -> dns.resolver.Resolver:
    """A dnspython resolver: the system configuration (`resolv_conf`: nameservers, search
    domains, ndots), with `nameservers` when given."""
    try:
        resolver = dns.resolver.Resolver(filename=resolv_conf, configure=True)
    except dns.resolver.NoResolverConfiguration:  # pragma: no cover - no resolv.conf
        resolver = dns.resolver.Resolver(configure=False)
    if nameservers:
        resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port)
                                for host, port in nameservers]
    resolver.cache = None
    resolver.lifetime = timeout_s
    resolver.timeout = min(timeout_s, 1.0)
    return resolver


class _DnsBase:
    def __init__(self, url: str, name: str, nameservers: tuple[tuple[str, int], ...],
                 timeout_s: float, resolv_conf: str) -> None:
        self.source = url
        self.name = name
        self.search = not name.endswith(".")
        self._resolver = make_resolver(nameservers, timeout_s, resolv_conf)

    def _query(self, name: str, rdtype: str) -> dns.resolver.Answer | None:
        """The answer, None when the name or the type does not exist; raises DiscoveryError."""
        try:
            return self._resolver.resolve(name, rdtype, search=self.search)
        except _GONE:
            return None
        except dns.exception.DNSException as exc:
            raise DiscoveryError(f"DNS {rdtype} lookup of {name} failed: "
                                 f"{exc.__class__.__name__}: {exc}") from exc

    def close(self) -> None:
        """Nothing to release: each lookup opens and closes its own socket."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.source}>"


class DnsResolver(_DnsBase):
    """A and AAAA records of `name`, each address with `port`."""

    def __init__(self, url: str, name: str, port: int, *,
                 nameservers: tuple[tuple[str, int], ...] = (), timeout_s: float = 2.0,
                 resolv_conf: str = RESOLV_CONF) -> None:
        super().__init__(url, name, nameservers, timeout_s, resolv_conf)
        self.port = port

    def resolve(self) -> Resolution:
        endpoints: list[Endpoint] = []
        ttls: list[float] = []
        for rdtype in ("A", "AAAA"):
            answer = self._query(self.name, rdtype)
            if answer is None or answer.rrset is None:
                continue
            ttls.append(answer.rrset.ttl)
            endpoints.extend(Endpoint(rr.address, self.port, source=self.source)
                             for rr in sorted(answer.rrset, key=lambda r: r.address))
        return Resolution(tuple(endpoints), self.source, min(ttls) if ttls else 0.0,
                          exists=bool(endpoints))


class SrvResolver(_DnsBase):
    """SRV records of `name` (`_service._proto.domain`)."""

    def __init__(self, url: str, name: str, *,
                 nameservers: tuple[tuple[str, int], ...] = (), timeout_s: float = 2.0,
                 resolv_conf: str = RESOLV_CONF) -> None:
        super().__init__(url, name, nameservers, timeout_s, resolv_conf)

    def resolve(self) -> Resolution:
        answer = self._query(self.name, "SRV")
        if answer is None or answer.rrset is None:
            return Resolution((), self.source, 0.0, exists=False)
        ttl: float = answer.rrset.ttl
        extra = _additional(answer.response)
        endpoints: list[Endpoint] = []
        for rr in sorted(answer.rrset, key=lambda r: (r.priority, str(r.target), r.port)):
            if str(rr.target) == ".":
                continue  # "service decidedly not available at this domain" (RFC 2782)
            addresses = extra.get(rr.target)
            if addresses is None:
                addresses, target_ttl = self._target(rr.target)
                ttl = min(ttl, target_ttl) if addresses else ttl
            meta = {"target": rr.target.to_text(omit_final_dot=True)}
            endpoints.extend(Endpoint(address, rr.port, max(rr.weight, 1), None, meta,
                                      self.source, rr.priority) for address in addresses)
        return Resolution(tuple(endpoints), self.source, ttl, exists=bool(endpoints))

    def _target(self, target: dns.name.Name) -> tuple[list[str], float]:
        addresses: list[str] = []
        ttl = float("inf")
        for rdtype in ("A", "AAAA"):
            try:
                answer = self._resolver.resolve(target, rdtype, search=False)
            except _GONE:
                continue
            except dns.exception.DNSException as exc:
                raise DiscoveryError(f"DNS {rdtype} lookup of SRV target {target} failed: "
                                     f"{exc.__class__.__name__}: {exc}") from exc
            if answer.rrset is not None:
                ttl = min(ttl, answer.rrset.ttl)
                addresses.extend(sorted(rr.address for rr in answer.rrset))
        return addresses, ttl


def _additional(response: dns.message.Message) -> dict[dns.name.Name, list[str]]:
    """Addresses of SRV targets the server put in the additional section."""
    out: dict[dns.name.Name, list[str]] = {}
    for rrset in response.additional:
        if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            out.setdefault(rrset.name, []).extend(sorted(rr.address for rr in rrset))
    return out
