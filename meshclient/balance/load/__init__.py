"""Load metrics, kept apart from selection (tower's `Load` vs `Balance`, Finagle's
`PeakEwma` vs `P2C`): a picker asks a metric for a cost and knows nothing else about it."""

from .peak_ewma import PeakEwma
from .pending import least_request_cost

__all__ = ["PeakEwma", "least_request_cost"]
