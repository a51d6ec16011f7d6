"""The scheduler queue: the ``Frontier`` protocol and its backends."""

from .base import Checkpoint, Frontier, FrontierStats, HostLimits, HostPolicy, PushResult
from .memory import MemoryFrontier
from .sqlite import SqliteFrontier

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
