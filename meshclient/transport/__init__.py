"""The sync and async shells."""

from ._async import AsyncMeshTransport
from ._sync import MeshTransport

__all__ = ["AsyncMeshTransport", "MeshTransport"]
