"""Security and enforcement: mutual TLS with rotation (`tls`), outbound credentials
(`credentials`), inbound authorization (`authz`, `asgi`, `wsgi`), client-side limits
(`limits`, `throttle`, `quota`), and the per-service guard the transports call
(`outbound`)."""
