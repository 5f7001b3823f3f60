"""Proxyless xDS: routes, clusters and endpoints from an xDS control plane (Istio's
istiod, or any ADS server), as gRPC's proxyless client takes them. See docs/xds.md.

Nothing here imports gRPC or the xDS protos until a client is started: `meshclient`
imports this package only when a bootstrap is present (`GRPC_XDS_BOOTSTRAP`, …), and
`pip install 'meshclient[xds]'` brings `grpcio` and `xds-protos`.

Usage:
```python
store = meshclient.PolicyStore()
meshclient.xds.attach(store, bootstrap=parse_bootstrap(text))
client = httpx.Client(transport=meshclient.MeshTransport(policy=store))
```
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .bootstrap import Bootstrap, Node, parse_bootstrap, read_bootstrap

if TYPE_CHECKING:
    from ..policy import EnvSettings, PolicyStore
    from .client import XdsClient

__all__ = ["Bootstrap", "Node", "attach", "from_env", "parse_bootstrap", "read_bootstrap"]


def attach(store: PolicyStore, bootstrap: Bootstrap, **options: Any) -> XdsClient:
    """Start an `XdsClient` keeping `store` in step with the bootstrap's server; `store.xds`
    is then that client and `store.close()` stops it. Options: see `XdsClient`."""
    from ..errors import PolicyError

    try:
        from .client import XdsClient
    except ImportError as exc:  # the extra is missing
        raise PolicyError(f"{bootstrap.origin}: xDS needs the xds extra "
                          f"(pip install 'meshclient[xds]'): {exc}") from None
    if store.xds is not None:
        raise PolicyError(f"store already follows the xDS server {store.xds.bootstrap.server_uri!r}")
    client = XdsClient(store, bootstrap, **options)
    store.xds = client
    return client.start()


def from_env(store: PolicyStore, settings: EnvSettings) -> XdsClient | None:
    """Attach the environment's bootstrap (if any) to `store`; raises `PolicyError`."""
    if settings.xds_bootstrap is None:
        return None
    bootstrap = read_bootstrap(settings.xds_bootstrap)
    return attach(store, bootstrap, hosts=settings.xds_hosts, wait_s=settings.xds_wait,
                  cache=settings.policy_cache)
