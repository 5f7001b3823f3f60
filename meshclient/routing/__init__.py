"""Routing: match rules, weighted splits, fault injection and mirroring, as pure decisions."""

from .decide import Decision, route
from .fault import FAULT_HEADER, FaultRoll, roll
from .mirror import mirror_copy
from .rules import first_match, matches
from .split import choose, sticky_point

__all__ = [
    "FAULT_HEADER",
    "Decision",
    "FaultRoll",
    "choose",
    "first_match",
    "matches",
    "mirror_copy",
    "roll",
    "route",
    "sticky_point",
]
