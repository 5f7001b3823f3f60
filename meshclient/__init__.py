"""meshclient: the service mesh as a Python library, through a drop-in httpx transport.

```python
import httpx, meshclient

client = httpx.Client(transport=meshclient.MeshTransport())   # policy from the environment
client.get("http://users/v1/users/42")                         # "users" is a logical service
```
"""

from . import errors, retrying
from ._client import AsyncClient, Client
from .discovery import register
from .errors import (
    CircuitOpen,
    DeadlineExceeded,
    MeshError,
    MeshTransportError,
    NoEndpointsAvailable,
    PolicyError,
    RateLimited,
)
from .policy import Policy, PolicyStore, default_store
from .server import handler
from .transport import AsyncMeshTransport, MeshTransport

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "AsyncMeshTransport",
    "CircuitOpen",
    "Client",
    "DeadlineExceeded",
    "MeshError",
    "MeshTransport",
    "MeshTransportError",
    "NoEndpointsAvailable",
    "Policy",
    "PolicyError",
    "PolicyStore",
    "RateLimited",
    "__version__",
    "default_store",
    "errors",
    "handler",
    "register",
    "retrying",
]

# Show public names as meshclient.X (httpx's trick), so reprs and docs are stable.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and _obj.__module__.startswith("meshclient."):
        _obj.__module__ = "meshclient"
del _name, _obj
