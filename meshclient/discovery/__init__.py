"""Where a service's endpoints come from."""

from ._base import Endpoint, split_address

__all__ = ["Endpoint", "split_address"]
