"""Start-up work a higher layer adds to the process-wide policy store, so that the policy
layer never imports the layers above it (dependency inversion).

Each entry of `STORE_STARTERS` is called, in order, with the default store and the
environment's settings (`policy.EnvSettings`) when that store is first built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

StoreStarter = Callable[[Any, Any], None]

STORE_STARTERS: list[StoreStarter] = []
