"""The scheduler queue: the ``Frontier`` protocol and its backends."""

from ._base import Checkpoint, Frontier, FrontierStats, HostLimits, HostPolicy, PushResult
from ._memory import MemoryFrontier
from .sqlite._frontier import SqliteFrontier

__all__ = [
    "Checkpoint",
    "Frontier",
    "FrontierStats",
    "HostLimits",
    "HostPolicy",
    "MemoryFrontier",
    "PushResult",
    "SqliteFrontier",
]
