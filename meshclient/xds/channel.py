"""The gRPC side of the ADS stream: the channel the bootstrap describes, the `node` it
announces, and the request iterator a stream reads from its outbox."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from google.protobuf import struct_pb2

from .bootstrap import Bootstrap

#: Put in an outbox to end its stream's requests.
END = object()


def node_proto(bootstrap: Bootstrap) -> Any:
    from .. import __version__

    node = bootstrap.node
    metadata = struct_pb2.Struct()
    metadata.update(dict(node.metadata))
    return base_pb2.Node(id=node.id, cluster=node.cluster, metadata=metadata,
                         locality=base_pb2.Locality(**dict(node.locality)),
                         user_agent_name="meshclient", user_agent_version=__version__)


def channel(bootstrap: Bootstrap) -> grpc.Channel:
    if bootstrap.channel_creds == "insecure":
        return grpc.insecure_channel(bootstrap.target)
    if bootstrap.channel_creds == "google_default":
        return grpc.secure_channel(bootstrap.target, grpc.google_default_channel_credentials())
    return grpc.secure_channel(bootstrap.target, grpc.ssl_channel_credentials())


def requests(outbox: queue.Queue[Any]) -> Iterator[Any]:
    while True:
        item = outbox.get()
        if item is END:
            return
        yield item
