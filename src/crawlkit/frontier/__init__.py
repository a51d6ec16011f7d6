"""The scheduler queue: the ``Frontier`` protocol, its backends, and ``open_frontier()``."""

from ._base import Checkpoint, Frontier, FrontierStats, HostLimits, HostPolicy, PushResult
from ._memory import MemoryFrontier
from ._open import FrontierKind, SharedCrawlWorker, frontier_kind, open_frontier
from ._sessionsync import SessionSync, SessionSyncReply
from .sqlite._frontier import SqliteFrontier

__all__ = [
    "Checkpoint",
    "Frontier",
    "FrontierKind",
    "FrontierStats",
    "HostLimits",
    "HostPolicy",
    "MemoryFrontier",
    "PushResult",
    "SessionSync",
    "SessionSyncReply",
    "SharedCrawlWorker",
    "SqliteFrontier",
    "frontier_kind",
    "open_frontier",
]
