"""A shared crawl's pool of sessions, against a real redis-server.

Several ``SessionPool`` objects, each synced through its own ``RedisFrontier`` on one job, stand
for several worker processes: a session is leased to one worker at a time, a retirement is
global, cookies and counts travel with the session, and the sessions of a worker that dies come
back when their leases expire.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterator
from typing import TypeVar

import pytest
import redis

from crawlkit.fetch import (
    Label,
    NoSessionAvailable,
    ProxyPool,
    SessionPool,
    SharedSessions,
    honest_profile,
    parse_proxy,
)
from crawlkit.frontier import HostLimits
from crawlkit.frontier.redis import RedisFrontier, job_prefix

T = TypeVar("T")
PROXIES = ["http://user:pr0xy-pass@127.0.0.1:3128", "http://127.0.0.1:3129"]
SITE = "http://shop.example/page"


class Workers:
    """Worker frontiers on one job, each with a pool of sessions synced with the shared pool."""

    def __init__(self, url: str, job: str) -> None:
        self.url = url
        self.job = job
        self.frontiers: list[RedisFrontier] = []

    async def join(self, worker: str, *, size: int = 2, ttl: float = 5.0) -> SharedSessions:
        frontier = RedisFrontier(
            self.url,
            self.job,
            worker,
            lambda host: HostLimits(4),
            spider_name="s",
            lease_ttl=ttl,
            retry_timeout=5.0,  # an unreachable Redis fails the test at once, not after minutes
        )
        await frontier.open()
        self.frontiers.append(frontier)
        proxies = ProxyPool([parse_proxy(url) for url in PROXIES])
        pool = SessionPool(lambda: honest_profile(f"agent of {worker}"), size=size, proxies=proxies)
        return SharedSessions(pool, frontier.session_store(), size=size, one_each=False)

    def run(self, scenario: Awaitable[T]) -> T:
        async def main() -> T:
            try:
                return await scenario
            finally:
                for frontier in self.frontiers:
                    await frontier.close()

        return asyncio.run(main())


async def die(frontier: RedisFrontier) -> None:
    """What SIGKILL leaves behind: no more renewals, nothing given back."""
    assert frontier._renewer is not None
    frontier._renewer.cancel()
    frontier._closed = True
    await frontier._redis.close()


@pytest.fixture
def workers(redis_url: str, redis_job: str) -> Iterator[Workers]:
    yield Workers(redis_url, redis_job)


def ids(shared: SharedSessions) -> set[str]:
    return {session.id for session in shared.pool.live}


def test_a_retired_session_is_never_handed_on_and_a_kept_one_keeps_its_cookies(workers: Workers) -> None:
    async def scenario() -> None:
        a = await workers.join("a")
        first = await a.pool.acquire()  # the first request syncs: this worker's places
        assert len(a.pool.live) == 2
        kept, burned = sorted(a.pool.live, key=lambda s: s.id)
        kept.store_cookies(["consent=yes; Path=/", "visitor=v1; Path=/"], SITE)
        a.pool.record(kept, Label.OK)
        a.pool.record(burned, Label.BLOCKED)  # retired here: for every worker
        assert first in (kept, burned)
        await a.close()  # gives back what it holds

        b = await workers.join("b")
        await b.pool.acquire()
        assert burned.id not in ids(b) and kept.id in ids(b)
        again = next(s for s in b.pool.live if s.id == kept.id)
        # The same visitor: its cookies, its proxy, its header profile, its count.
        assert again.cookie_header(SITE) == "consent=yes; visitor=v1"
        assert again.proxy == kept.proxy and again.profile == kept.profile
        assert again.profile.get("User-Agent") == "agent of a"
        assert again.uses == 1 and again.created == kept.created
        await b.close()

    workers.run(scenario())
    client = redis.Redis.from_url(workers.url)
    try:
        assert client.hgetall(job_prefix(workers.job) + "s:retired") == {b"blocked": b"1"}
    finally:
        client.close()


def test_a_worker_joining_late_gets_its_share_of_the_live_pool(workers: Workers) -> None:
    async def scenario() -> None:
        a = await workers.join("a", size=4)
        await a.pool.acquire()
        assert len(a.pool.live) == 4
        b = await workers.join("b", size=4)
        asking = asyncio.create_task(b.pool.acquire())  # all four are a's until its next sync
        await asyncio.sleep(0.3)
        assert not asking.done() and b.pool.live == []
        await a.sync()  # a's share is now two: it gives two back
        assert len(a.pool.live) == 2
        session = await asyncio.wait_for(asking, 5)  # the waiting request gets one of them
        assert len(b.pool.live) == 2 and session in b.pool.live and not ids(a) & ids(b)
        assert len(ids(a) | ids(b)) == 4  # the pool's size holds for both workers together

    workers.run(scenario())


def test_a_worker_with_no_session_waits_then_gives_its_request_back(workers: Workers) -> None:
    async def scenario() -> None:
        a = await workers.join("a", size=1)
        await a.pool.acquire()
        b = await workers.join("b", size=1)  # an explicit size below the number of workers
        started = time.monotonic()
        with pytest.raises(NoSessionAvailable):
            await b.pool.acquire()
        assert time.monotonic() - started >= 1.5  # it waited for one, in vain

    workers.run(scenario())


def test_the_sessions_of_a_killed_worker_come_back_as_of_its_last_sync(workers: Workers) -> None:
    async def scenario() -> None:
        a = await workers.join("a", ttl=0.6)
        b = await workers.join("b", ttl=0.6)
        await a.pool.acquire()
        session = a.pool.live[0]
        session.store_cookies(["login=alice; Path=/"], SITE)
        a.pool.record(session, Label.OK)
        await a.sync()  # a checkpoint's sync
        a.pool.record(session, Label.OK)  # not synced: lost with the worker
        await die(workers.frontiers[0])
        # b is alive: it takes the dead worker's sessions once their leases have expired.
        deadline = time.monotonic() + 10
        while session.id not in ids(b):
            assert time.monotonic() < deadline, "the dead worker's sessions never came back"
            await asyncio.sleep(0.2)
            await b.sync()
        again = next(s for s in b.pool.live if s.id == session.id)
        assert again.cookie_header(SITE) == "login=alice" and again.uses == 1

    workers.run(scenario())


def test_a_session_taken_from_a_stalled_worker_is_dropped_by_it(workers: Workers) -> None:
    async def scenario() -> None:
        a = await workers.join("a", size=1, ttl=0.6)
        b = await workers.join("b", size=1, ttl=0.6)
        await a.pool.acquire()
        (session,) = a.pool.live
        await a.sync()  # its document is in the pool
        await asyncio.sleep(1.0)  # a stalls past its lease; b (connected as long) takes it back
        await b.sync()
        assert ids(b) == {session.id}
        session.store_cookies(["stale=1; Path=/"], SITE)
        a.pool.record(session, Label.OK)
        await a.sync()
        assert a.pool.live == []  # lost: a uses it no more, and its stale copy is not written
        await b.close()
        c = await workers.join("c", size=1, ttl=0.6)
        await c.sync()
        (again,) = c.pool.live
        assert again.id == session.id and again.cookie_header(SITE) is None

    workers.run(scenario())


def test_no_proxy_password_reaches_redis(workers: Workers) -> None:
    async def scenario() -> None:
        a = await workers.join("a")
        await a.pool.acquire()
        for session in a.pool.live:
            a.pool.record(session, Label.OK)
        await a.close()

    workers.run(scenario())
    client = redis.Redis.from_url(workers.url)
    try:
        keys = list(client.scan_iter(match=job_prefix(workers.job) + "s:*"))
        assert keys
        for key in keys:
            assert b"pr0xy-pass" not in client.dump(key), key  # type: ignore[operator]
        docs = client.hvals(job_prefix(workers.job) + "s:doc")
        assert len(docs) == 2 and all(b'"user"' in doc for doc in docs if b"3128" in doc)
    finally:
        client.close()


def test_a_session_whose_proxy_rests_gives_its_place_to_one_on_a_ready_proxy(workers: Workers) -> None:
    async def scenario() -> None:
        a = await workers.join("a", size=1)
        session = await a.pool.acquire()
        proxies = a.pool.proxies
        assert proxies is not None and session.proxy is not None
        for _ in range(3):  # three proxy errors in a row rest a proxy
            proxies.record(session.proxy, Label.PROXY_ERROR)
        assert session.proxy not in proxies.ready()
        fresh = await a.pool.acquire()
        assert fresh is not session and fresh.proxy in proxies.ready()
        assert session.retired == "proxy_resting" and a.pool.live == [fresh]

    workers.run(scenario())
    client = redis.Redis.from_url(workers.url)
    try:
        assert client.hgetall(job_prefix(workers.job) + "s:retired") == {b"proxy_resting": b"1"}
    finally:
        client.close()
