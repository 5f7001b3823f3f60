"""The control package's error (never raised to a request: the refresher logs and counts)."""

from __future__ import annotations

from ..errors import MeshError


class ControlError(MeshError):
    """The control endpoint could not be read: unreachable, a bad status, an oversized
    body, a deleted key. The last good policy stays in force."""
