"""The scheduler queue: the ``Frontier`` protocol and its backends."""

from .base import Frontier, FrontierStats, HostLimits, PushResult
from .memory import MemoryFrontier

__all__ = ["Frontier", "FrontierStats", "HostLimits", "MemoryFrontier", "PushResult"]
