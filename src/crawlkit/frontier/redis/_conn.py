"""The Redis frontier's connection: one client, the Lua scripts, and riding out outages.

``Scripts.run()`` runs one script of ``_lua.py`` and, while Redis is unreachable (refused,
timed out, loading its data after a restart), retries with backoff for a bounded time, logging the
outage once when it starts and once when it ends. The scripts are written to be safe to run
twice, since a reply lost with the connection leaves unknown whether a script ran.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ...errors import CommitError, ConfigError
from . import _lua as redis_lua

__all__ = ["RedisUnreachable", "Scripts", "config_value", "connect", "job_prefix", "safe_url"]

log = logging.getLogger("crawlkit.frontier.redis")

_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
_NAME_REFUSED = re.compile(r"[^!-~]")  # CLIENT SETNAME takes no spaces, newlines or non-ASCII


class RedisUnreachable(CommitError):
    """Redis stayed unreachable for the whole retry budget of one call."""


def job_prefix(job: str) -> str:
    """The key prefix of a job: the ``{job}`` hash tag keeps all its keys in one cluster slot."""
    return f"crawlkit:{{{job}}}:"


def safe_url(url: str) -> str:
    """A Redis URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not sep or not at:
        return url
    user = creds.partition(":")[0]
    return f"{scheme}://{user + ':' if user else ''}***@{host}"


def connect(url: str, timeout: float = 10.0, name: str | None = None) -> aioredis.Redis:
    """An asyncio client that does not retry on its own: ``Scripts`` retries, and logs it.

    Its connections carry ``name`` (``CLIENT LIST`` shows which job and worker holds them).
    """
    client: aioredis.Redis = aioredis.from_url(
        url,
        socket_connect_timeout=min(timeout, 5.0),
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        client_name=name,
    )
    return client


def client_name(job: str, worker: str) -> str:
    """The connection name of a worker: ``crawlkit:JOB:WORKER``, with no character Redis refuses."""
    return _NAME_REFUSED.sub("_", f"crawlkit:{job}:{worker}")


def config_value(config: Mapping[Any, Any], name: str) -> str:
    """One value of a ``CONFIG GET`` reply, as text ('' if absent)."""
    for key, value in config.items():
        if (key.decode() if isinstance(key, bytes) else str(key)) == name:
            return value.decode() if isinstance(value, bytes) else str(value)
    return ""


class Scripts:
    """The Lua scripts of one job on one client, run with bounded retries."""

    def __init__(self, url: str, job: str, retry_timeout: float, name: str | None = None) -> None:
        self.url = url
        self.job = job
        self.name = name  # of its connections
        self.prefix = job_prefix(job)
        self.meta = self.prefix + "meta"
        self.retry_timeout = retry_timeout
        self.client: aioredis.Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._extra: dict[str, str] = {}  # scripts of other parts of the job (its sessions)
        self.outage_since: float | None = None
        self.healthy_since = time.monotonic()  # since when calls have succeeded without a break

    async def connect(self) -> None:
        """Connect, or raise a ``ConfigError`` at once: at start, an unreachable Redis is a usage error."""
        client = connect(self.url, name=self.name)
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise ConfigError(f"cannot reach Redis at {safe_url(self.url)}: {exc}") from exc
        self.client = client
        for name in redis_lua.__all__:
            self._scripts[name.lower()] = client.register_script(getattr(redis_lua, name))
        for name, source in self._extra.items():
            self._scripts[name] = client.register_script(source)
        self.healthy_since = time.monotonic()

    def register(self, name: str, source: str) -> None:
        """One more script, run by ``run(name, ...)`` as the frontier's are."""
        self._extra[name] = source
        if self.client is not None:
            self._scripts[name] = self.client.register_script(source)

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await client.aclose()

    async def call_once(self, name: str, args: Sequence[Any]) -> list[Any]:
        """Run a script once; Redis errors propagate as they are."""
        reply: list[Any] = await self._scripts[name](keys=[self.meta], args=[self.prefix, *args])
        return reply

    async def run(self, name: str, args: Sequence[Any], budget: float | None = None) -> list[Any]:
        """Run a script, retrying while Redis is unreachable for at most ``budget`` seconds.

        Raises ``RedisUnreachable`` when the budget runs out, and ``CommitError`` when Redis
        refuses the script or the job's state is gone.
        """
        budget = self.retry_timeout if budget is None else budget
        give_up_at: float | None = None
        pause = 0.05
        while True:
            try:
                reply = await self.call_once(name, args)
            except _UNREACHABLE as exc:
                now = time.monotonic()
                give_up_at = now + budget if give_up_at is None else give_up_at
                self._outage(exc, budget)
                if now >= give_up_at:
                    raise RedisUnreachable(
                        f"Redis at {safe_url(self.url)} stayed unreachable for {budget:.0f} s ({exc}); "
                        "this worker stops. Its leased requests go back to the queue when their "
                        "leases expire; start it again to go on"
                    ) from exc
                await asyncio.sleep(min(pause, give_up_at - now))
                pause = min(pause * 2, 2.0)
                continue
            except RedisError as exc:
                raise CommitError(f"Redis refused a frontier update: {exc}") from exc
            self._recovered()
            if reply[0] == b"gone":
                raise CommitError(
                    f"the state of job {self.job!r} is gone from Redis (it restarted without "
                    "persistence, or the job was reset while this worker ran); start over with --fresh"
                )
            return reply

    def _outage(self, exc: BaseException, budget: float) -> None:
        if self.outage_since is None:
            self.outage_since = time.monotonic()
            log.warning(
                "Redis at %s is unreachable (%s); waiting for it, at most %.0f s",
                safe_url(self.url),
                exc,
                budget,
            )

    def _recovered(self) -> None:
        if self.outage_since is not None:
            now = time.monotonic()
            log.warning("Redis is reachable again after %.1f s", now - self.outage_since)
            self.outage_since = None
            self.healthy_since = now

    async def warn_about_config(self) -> None:
        """Warn about settings of the server that can lose a crawl (if CONFIG may be read)."""
        assert self.client is not None
        try:
            eviction = await self.client.config_get("maxmemory-policy")
            persistence = await self.client.config_get("appendonly")
        except RedisError:  # managed services often rename CONFIG away
            return
        policy = config_value(eviction, "maxmemory-policy")
        if policy not in ("", "noeviction"):
            log.warning(
                "Redis evicts keys when full (maxmemory-policy %s): an evicted key corrupts the crawl; "
                "set maxmemory-policy noeviction",
                policy,
            )
        if config_value(persistence, "appendonly") == "no":
            log.info("Redis has no append-only file: if it restarts, the shared crawl's state is lost")
