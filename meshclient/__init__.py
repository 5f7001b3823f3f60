"""meshclient: the service mesh as a Python library, through a drop-in httpx transport.

```python
import httpx, meshclient

client = httpx.Client(transport=meshclient.MeshTransport())   # policy from the environment
client.get("http://users/v1/users/42")                         # "users" is a logical service
```

`import meshclient` loads httpx and the core error types only; the transports, the policy model
and the rest load on first use of a name (PEP 562), so a program that imports meshclient
and never calls it pays little more than `import httpx`.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

from . import _extensions, errors
from .errors import ELSEWHERE as _ERRORS_ELSEWHERE
from .errors import (
    CheckDenied,
    CircuitOpen,
    DeadlineExceeded,
    MeshError,
    MeshTransportError,
    NoEndpointsAvailable,
    PolicyError,
    RateLimited,
)


def _start_xds(store: PolicyStore, settings: _typing.Any) -> None:
    """The default store's xDS client, when the environment names a bootstrap (only then
    is anything xDS imported)."""
    if settings.xds_bootstrap is not None:
        from .xds import from_env

        from_env(store, settings)


_extensions.STORE_STARTERS.append(_start_xds)

if _typing.TYPE_CHECKING:
    from . import retrying
    from ._client import AsyncClient, Client
    from .discovery.register import register
    from .errors import (
        BackoffError,
        BreakerError,
        BudgetError,
        ControlError,
        CredentialsError,
        CredentialsUnavailable,
        DiscoveryError,
        EtcdError,
        HandlerRejected,
        JwksError,
        RedactionError,
        RegistrationError,
        RetryingError,
        SchemeDowngrade,
        SheddingError,
        TimeoutOverrideError,
        TlsError,
        TokenAnswerError,
    )
    from .policy import Policy, PolicyStore, default_store
    from .server import handler
    from .transport import AsyncMeshTransport, MeshTransport

#: The package's one version: pyproject.toml reads it, `meshclient --version` prints it.
__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "AsyncMeshTransport",
    "BackoffError",
    "BreakerError",
    "BudgetError",
    "CheckDenied",
    "CircuitOpen",
    "Client",
    "ControlError",
    "CredentialsError",
    "CredentialsUnavailable",
    "DeadlineExceeded",
    "DiscoveryError",
    "EtcdError",
    "HandlerRejected",
    "JwksError",
    "MeshError",
    "MeshTransport",
    "MeshTransportError",
    "NoEndpointsAvailable",
    "Policy",
    "PolicyError",
    "PolicyStore",
    "RateLimited",
    "RedactionError",
    "RegistrationError",
    "RetryingError",
    "SchemeDowngrade",
    "SheddingError",
    "TimeoutOverrideError",
    "TlsError",
    "TokenAnswerError",
    "__version__",
    "default_store",
    "errors",
    "handler",
    "register",
    "retrying",
]

#: Public names loaded on first use -> the module that defines them.
_LAZY = {
    "AsyncClient": "._client",
    "AsyncMeshTransport": ".transport",
    "Client": "._client",
    "MeshTransport": ".transport",
    "Policy": ".policy",
    "PolicyStore": ".policy",
    "default_store": ".policy",
    "handler": ".server",
    "register": ".discovery",
    **{name: ".errors" for name in _ERRORS_ELSEWHERE},  # errors defined beside their code
}
#: Public subpackages and modules loaded on first use.
_LAZY_MODULES = ("retrying",)


def _public(obj: _typing.Any) -> _typing.Any:
    """Show a public class as meshclient.X (httpx's trick), so reprs and docs are stable."""
    if isinstance(obj, type) and obj.__module__.startswith("meshclient."):
        obj.__module__ = "meshclient"
    return obj


def __getattr__(name: str) -> _typing.Any:
    if name in _LAZY_MODULES:
        return _importlib.import_module(f".{name}", __name__)  # sets the attribute itself
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'meshclient' has no attribute {name!r}")
    value = _public(getattr(_importlib.import_module(module, __name__), name))
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


for _name in __all__:
    if _name not in _LAZY and _name not in _LAZY_MODULES:
        _public(globals()[_name])
del _name
