"""The gRPC side of the ADS stream: the channel the bootstrap describes, the `node` it
announces, and the request iterator a stream reads from its outbox."""

from __future__ import annotations

import importlib.metadata
import queue
from collections.abc import Iterator
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from google.protobuf import struct_pb2

from ..errors import PolicyError
from .bootstrap import Bootstrap

#: Put in an outbox to end its stream's requests.
END = object()


def _version() -> str:
    """meshclient's installed version (the package root is not imported from here: it
    starts this layer)."""
    try:
        return importlib.metadata.version("meshclient")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def node_proto(bootstrap: Bootstrap) -> Any:
    node = bootstrap.node
    metadata = struct_pb2.Struct()
    metadata.update(dict(node.metadata))
    return base_pb2.Node(id=node.id, cluster=node.cluster, metadata=metadata,
                         locality=base_pb2.Locality(**dict(node.locality)),
                         user_agent_name="meshclient", user_agent_version=_version())


def channel(bootstrap: Bootstrap) -> grpc.Channel:
    if bootstrap.channel_creds == "insecure":
        return grpc.insecure_channel(bootstrap.target)
    if bootstrap.channel_creds == "google_default":
        return grpc.secure_channel(bootstrap.target, grpc.google_default_channel_credentials())
    return grpc.secure_channel(bootstrap.target, tls_credentials(bootstrap))


def tls_credentials(bootstrap: Bootstrap) -> grpc.ChannelCredentials:
    """`tls` channel credentials: the bootstrap's PEM files, else the system roots. A file
    that cannot be read raises `PolicyError` naming it (the stream retries with backoff)."""
    pem: dict[str, bytes] = {}
    for key, path in bootstrap.tls_files.items():
        try:
            with open(path, "rb") as file:
                pem[key] = file.read(1 << 20)
        except OSError as exc:
            raise PolicyError(f"{bootstrap.origin}: channel_creds tls {key} {path!r} cannot "
                              f"be read: {exc.strerror or exc}") from None
    return grpc.ssl_channel_credentials(root_certificates=pem.get("ca_certificate_file"),
                                        private_key=pem.get("private_key_file"),
                                        certificate_chain=pem.get("certificate_file"))


def requests(outbox: queue.Queue[Any]) -> Iterator[Any]:
    while True:
        item = outbox.get()
        if item is END:
            return
        yield item
