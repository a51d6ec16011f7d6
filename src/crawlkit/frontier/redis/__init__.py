"""The shared frontier: one crawl in Redis for many worker processes (needs ``crawlkit[redis]``)."""

from ._conn import RedisUnreachable, client_name, job_prefix, safe_url
from ._frontier import RedisFrontier

__all__ = ["RedisFrontier", "RedisUnreachable", "client_name", "job_prefix", "safe_url"]
