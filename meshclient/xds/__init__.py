"""Proxyless xDS: routes, clusters and endpoints from an xDS control plane (docs/xds.md).

Nothing here is imported unless an xDS bootstrap is present; the modules need the
`xds` extra (`grpcio`, `xds-protos`).
"""
