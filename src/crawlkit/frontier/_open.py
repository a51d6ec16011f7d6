"""One way to make the frontier that the ``frontier`` setting names."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..errors import ConfigError
from ._base import Frontier, HostPolicy
from ._memory import MemoryFrontier
from .sqlite import SqliteFrontier

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = ["FrontierKind", "SharedCrawlWorker", "frontier_kind", "open_frontier"]

FrontierKind = Literal["memory", "sqlite", "redis"]


@dataclasses.dataclass(frozen=True, slots=True)
class SharedCrawlWorker:
    """One worker's place in a shared (Redis) crawl: the job, its worker id, the part it writes."""

    job: str
    worker_id: str
    part: Path


def frontier_kind(setting: str) -> FrontierKind:
    """Which backend a ``frontier`` setting names (settings validation has checked its form)."""
    if setting == "memory":
        return "memory"
    if "://" in setting:  # redis://, rediss://, unix://
        return "redis"
    return "sqlite"


def open_frontier(
    settings: Settings,
    host_policy: HostPolicy,
    *,
    spider_name: str = "",
    database: Path | None = None,
    shared: SharedCrawlWorker | None = None,
) -> Frontier:
    """The frontier that ``settings.frontier`` names, not opened yet (the engine opens it).

    ``database`` is the SQLite file of a durable crawl (in its job directory); ``shared`` is this
    worker's place in a shared crawl. The Redis backend is imported only when named: redis-py is
    an optional dependency.
    """
    kind = frontier_kind(settings.frontier)
    if kind == "memory":
        return MemoryFrontier(host_policy, depth_limit=settings.depth_limit)
    if kind == "sqlite":
        if database is None:
            raise ValueError("the sqlite frontier needs the path of its database")
        return SqliteFrontier(
            database, host_policy, depth_limit=settings.depth_limit, spider_name=spider_name
        )
    if shared is None:
        raise ValueError("a Redis frontier needs this worker's place in the shared crawl")
    try:
        from .redis import RedisFrontier
    except ImportError as exc:  # pragma: no cover - redis-py is an optional dependency
        raise ConfigError("a Redis frontier needs redis-py: pip install 'crawlkit[redis]'") from exc

    return RedisFrontier(
        settings.frontier,
        shared.job,
        shared.worker_id,
        host_policy,
        depth_limit=settings.depth_limit,
        spider_name=spider_name,
        part=str(shared.part.resolve()),
        node=socket.gethostname(),
        lease_ttl=settings.lease_ttl,
        retry_timeout=settings.redis_retry_timeout,
        seen_shards=settings.redis_seen_shards,
    )
