"""A cluster's `transport_socket` with an `UpstreamTlsContext` -> a meshclient `tls` section.

meshclient reads TLS material from files, so the context must name files:

- the client certificate: `tls_certificates[0]` with `filename` data sources, or a
  certificate provider instance (`tls_certificate_provider_instance`, as gRPC and Istio's
  proxyless bootstrap use; gRFC A29) whose `file_watcher` plugin in the bootstrap's
  `certificate_providers` names `certificate_file` and `private_key_file`;
- the CA: `validation_context.trusted_ca.filename`, or a provider instance
  (`ca_certificate_provider_instance`, or `validation_context_certificate_provider_instance`
  of a `combined_validation_context`) whose plugin names `ca_certificate_file`;
- the server identity: `sni` -> `server_name`; `match_subject_alt_names` with exact
  `spiffe://` URIs -> `spiffe_id` (one ID; several in one trust domain: the trust domain).

Inline bytes, SDS secrets and other matchers cannot be honoured and are refused (NACK),
rather than connecting with weaker checks than the control plane asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

from ._translate_common import Where, type_name, unpack

UPSTREAM_TLS = tls_pb2.UpstreamTlsContext.DESCRIPTOR.full_name
RAW_BUFFER = "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"


def _file(where: Where, source: Any) -> str:
    if source.WhichOneof("specifier") != "filename" or not source.filename:
        raise where.error("must be a filename (inline data is not supported)")
    return str(source.filename)


def _provider(where: Where, instance: Any, providers: Mapping[str, Any] | None,
              key: str) -> str:
    config = (providers or {}).get(instance.instance_name)
    plugin = config.get("config", {}) if isinstance(config, Mapping) else None
    path = plugin.get(key) if isinstance(plugin, Mapping) else None
    if not isinstance(path, str) or not path:
        raise where.error(f"certificate provider {instance.instance_name!r} names no {key} "
                          "in the bootstrap's certificate_providers")
    return path


def _spiffe(where: Where, ctx: Any) -> str | None:
    ids: list[str] = []
    for i, m in enumerate(ctx.match_subject_alt_names):
        if m.WhichOneof("match_pattern") != "exact" or not m.exact.startswith("spiffe://"):
            raise where.at("match_subject_alt_names").at(i).error(
                "only exact spiffe:// URIs are supported")
        ids.append(m.exact)
    for i, t in enumerate(ctx.match_typed_subject_alt_names):
        m = t.matcher
        if m.WhichOneof("match_pattern") != "exact" or not m.exact.startswith("spiffe://"):
            raise where.at("match_typed_subject_alt_names").at(i).error(
                "only exact spiffe:// URIs are supported")
        ids.append(m.exact)
    if not ids:
        return None
    if len(set(ids)) == 1:
        return ids[0]
    domains = {i.removeprefix("spiffe://").split("/", 1)[0] for i in ids}
    if len(domains) > 1:
        raise where.error(f"subject alt names span several trust domains: {sorted(domains)}")
    return "spiffe://" + domains.pop()


def tls_document(where: Where, socket: Any, providers: Mapping[str, Any] | None,
                 ) -> dict[str, Any] | None:
    """The `tls` section for `socket`, None for plain text; raises PolicyError."""
    if not socket.HasField("typed_config"):
        return None
    kind = type_name(socket.typed_config)
    if kind == RAW_BUFFER:
        return None
    here = where.at("typed_config")
    ctx = unpack(here, socket.typed_config, tls_pb2.UpstreamTlsContext)
    common = ctx.common_tls_context
    at = here.at("common_tls_context")
    out: dict[str, Any] = {}
    if ctx.sni:
        out["server_name"] = ctx.sni
    if common.tls_certificate_sds_secret_configs or common.HasField(
            "validation_context_sds_secret_config"):
        raise at.error("SDS secrets are not supported: name files or certificate providers")
    if common.tls_certificates:
        cert = common.tls_certificates[0]
        out["cert"] = _file(at.at("tls_certificates[0].certificate_chain"),
                            cert.certificate_chain)
        out["key"] = _file(at.at("tls_certificates[0].private_key"), cert.private_key)
    else:
        for field in ("tls_certificate_provider_instance",
                      "tls_certificate_certificate_provider_instance"):
            if common.HasField(field):
                inst = getattr(common, field)
                out["cert"] = _provider(at.at(field), inst, providers, "certificate_file")
                out["key"] = _provider(at.at(field), inst, providers, "private_key_file")
                break
    validation = None
    if common.HasField("validation_context"):
        validation, vat = common.validation_context, at.at("validation_context")
    elif common.HasField("combined_validation_context"):
        combined = common.combined_validation_context
        vat = at.at("combined_validation_context")
        validation = combined.default_validation_context
        if combined.HasField("validation_context_certificate_provider_instance"):
            out["ca"] = _provider(vat.at("validation_context_certificate_provider_instance"),
                                  combined.validation_context_certificate_provider_instance,
                                  providers, "ca_certificate_file")
        vat = vat.at("default_validation_context")
    if validation is not None:
        if validation.HasField("trusted_ca"):
            out["ca"] = _file(vat.at("trusted_ca"), validation.trusted_ca)
        elif validation.HasField("ca_certificate_provider_instance"):
            out["ca"] = _provider(vat.at("ca_certificate_provider_instance"),
                                  validation.ca_certificate_provider_instance, providers,
                                  "ca_certificate_file")
        spiffe = _spiffe(vat, validation)
        if spiffe is not None:
            out["spiffe_id"] = spiffe
            out.pop("server_name", None)  # the SAN check replaces the host name check
    return out
