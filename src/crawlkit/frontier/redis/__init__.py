"""The shared frontier: one crawl in Redis for many worker processes (needs ``crawlkit[redis]``)."""

from ._conn import RedisUnreachable, client_name, job_prefix, safe_url
from ._frontier import RedisFrontier
from ._sessions import RedisSessionStore

__all__ = ["RedisFrontier", "RedisSessionStore", "RedisUnreachable", "client_name", "job_prefix", "safe_url"]
