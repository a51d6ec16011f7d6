"""crawlkit.frontier.redis: the shared frontier's semantics, against a real redis-server.

Several ``RedisFrontier`` objects on one job stand for several worker processes: what one leases,
acks or retries, the others see. Delays and lease expiry run on the Redis server's clock, so the
tests that need time wait for real (tenths of a second).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis

from crawlkit.core._shared import export_job, job_status, reset_job
from crawlkit.errors import CommitError, ConfigError, FrontierError, StorageError
from crawlkit.frontier import Frontier, HostLimits
from crawlkit.frontier.redis import RedisFrontier, job_prefix, safe_url
from crawlkit.frontier.redis._conn import client_name
from crawlkit.http import Request
from support.frontierkit import crawl_a_pagination_chain, listing_positions, run
from support.redisserver import RedisServer, redis_server_binary, require_redis

T = TypeVar("T")


class Workers:
    """Makes frontiers (workers) on one job; closes the ones still open at the end."""

    def __init__(self, url: str, job: str) -> None:
        self.url = url
        self.job = job
        self.made: list[RedisFrontier] = []

    def make(
        self,
        worker: str = "w1",
        *,
        concurrency: int = 8,
        delay: float = 0.0,
        limits: Callable[[str], HostLimits] | None = None,
        **kwargs: Any,
    ) -> RedisFrontier:
        kwargs.setdefault("lease_ttl", 5.0)
        kwargs.setdefault("spider_name", "spider")
        frontier = RedisFrontier(
            self.url, self.job, worker, limits or (lambda host: HostLimits(concurrency, delay)), **kwargs
        )
        self.made.append(frontier)
        return frontier

    def run(self, coro: Awaitable[T]) -> T:
        """Run a scenario, then close its workers in the same event loop."""

        async def main() -> T:
            try:
                return await coro
            finally:
                for frontier in self.made:
                    await frontier.close()
                self.made.clear()

        return asyncio.run(main())


async def kill(frontier: RedisFrontier) -> None:
    """What SIGKILL leaves behind: no more renewals, no close(); leases and id stay in Redis."""
    assert frontier._renewer is not None
    frontier._renewer.cancel()
    frontier._closed = True
    await frontier._redis.close()


@pytest.fixture
def workers(redis_url: str, redis_job: str) -> Iterator[Workers]:
    yield Workers(redis_url, redis_job)


def req(path: str, host: str = "a.example", **kwargs: Any) -> Request:
    return Request(f"http://{host}/{path}", **kwargs)


def urls(requests: list[Request]) -> list[str]:
    return [r.url for r in requests]


async def settle(frontier: RedisFrontier, n: int = 100) -> list[Request]:
    return await frontier.lease(n)


# -- the protocol ---------------------------------------------------------------------------------


def test_it_is_a_frontier_and_durable(workers: Workers) -> None:
    frontier = workers.make()
    assert isinstance(frontier, Frontier)
    assert frontier.durable


def test_priority_then_first_in_first_out_within_a_host(workers: Workers) -> None:
    async def go() -> list[str]:
        f = workers.make(concurrency=100)
        assert await f.open() is None  # a new job
        await f.push([req("a"), req("b", priority=5), req("c"), req("d", priority=5), req("e", priority=-1)])
        return urls(await f.lease(10))

    assert workers.run(go()) == [f"http://a.example/{p}" for p in "bdace"]


async def drain_one_by_one(f: RedisFrontier) -> list[str]:
    served: list[str] = []
    while batch := await f.lease(1):
        served.extend(urls(batch))
        for r in batch:
            await f.ack(r, [])
    return served


def test_callbacks_take_turns_within_a_priority(workers: Workers) -> None:
    async def go() -> list[str]:
        f = workers.make(concurrency=100)
        await f.open()
        await f.push([req(f"item{i}", callback="parse_item") for i in range(4)])
        await f.push([req("list1"), req("list2", callback="parse")])
        return await drain_one_by_one(f)

    # The same order as the memory and SQLite frontiers give (test_frontier_contract.py).
    assert workers.run(go()) == [
        f"http://a.example/{p}" for p in ("item0", "list1", "item1", "list2", "item2", "item3")
    ]


def test_a_pagination_chain_advances_while_its_items_wait(workers: Workers) -> None:
    async def go() -> list[str]:
        f = workers.make(concurrency=1)
        await f.open()
        return await crawl_a_pagination_chain(f, "http://a.example/list/0")

    served = workers.run(go())
    assert len(served) == len(set(served)) == 10 + 10 * 20
    assert listing_positions(served) == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]


def test_a_retry_goes_behind_its_callback_and_a_release_keeps_its_place(workers: Workers) -> None:
    async def go() -> list[str]:
        f = workers.make(concurrency=100)
        await f.open()
        await f.push([req(f"item{i}", callback="parse_item", priority=2) for i in range(3)])
        first, second = await f.lease(2)
        await f.retry(first, 0)
        await f.release([second])
        return urls(await f.lease(10))

    # Its priority stays: it still goes before a priority-0 request.
    assert workers.run(go()) == [f"http://a.example/{p}" for p in ("item1", "item2", "item0")]


def test_priorities_beyond_4095_count_as_4095(workers: Workers) -> None:
    # A queue's rank holds -priority and a turn in one exact double: priorities are clamped.
    async def go() -> list[str]:
        f = workers.make(concurrency=100)
        await f.open()
        await f.push(
            [
                req("low", priority=-(10**9)),
                req("top", priority=10**9),
                req("plain"),
                req("top2", priority=4095),
                req("low2", priority=-4095),
            ]
        )
        return urls(await f.lease(10))

    assert workers.run(go()) == [f"http://a.example/{p}" for p in ("top", "top2", "plain", "low", "low2")]


def test_a_job_queued_in_the_old_order_is_refused(workers: Workers, redis_url: str) -> None:
    async def go() -> None:
        first = workers.make("w1")
        await first.open()
        await first.push([req("a")])
        await first.close()
        client = redis.Redis.from_url(redis_url)
        client.hdel(job_prefix(workers.job) + "meta", "format")
        client.close()
        with pytest.raises(ConfigError, match=r"older crawlkit.*reset the job"):
            await workers.make("w2").open()

    workers.run(go())


def test_hosts_are_served_best_priority_first(workers: Workers) -> None:
    async def go() -> list[str]:
        f = workers.make(concurrency=1)
        await f.open()
        await f.push([req("low", host="x.example"), req("high", host="y.example", priority=3)])
        await f.push([req("mid", host="z.example", priority=1)])
        return urls(await f.lease(3))

    assert workers.run(go()) == ["http://y.example/high", "http://z.example/mid", "http://x.example/low"]


def test_dedup_is_shared_and_canonical(workers: Workers) -> None:
    async def go() -> tuple[Any, ...]:
        a, b = workers.make("w1"), workers.make("w2")
        await a.open()
        await b.open()
        first = await a.push([req("p?x=1&y=2"), req("q")])
        # Seen by another worker: the query order, the fragment and the case of the scheme differ.
        second = await b.push([Request("HTTP://a.example/p?y=2&x=1#top"), req("q"), req("r")])
        forced = await b.push([req("q", dont_filter=True)])
        return first, second, forced, len(await b.lease(10))

    first, second, forced, leased = workers.run(go())
    assert (first.queued, first.duplicates) == (2, 0)
    assert (second.queued, second.duplicates) == (1, 2)
    assert forced.queued == 1
    assert leased == 4


def test_depth_limit(workers: Workers) -> None:
    async def go() -> Any:
        f = workers.make(depth_limit=2)
        await f.open()
        return await f.push([req("a", depth=2), req("b", depth=3)])

    result = workers.run(go())
    assert (result.queued, result.over_depth) == (1, 1)


def test_per_host_concurrency_holds_across_workers(workers: Workers) -> None:
    async def go() -> tuple[int, int, int, int]:
        a, b = workers.make("w1", concurrency=3), workers.make("w2", concurrency=3)
        await a.open()
        await b.open()
        await a.push([req(str(i)) for i in range(10)] + [req("other", host="b.example")])
        got_a = await a.lease(2)
        got_b = await b.lease(10)  # one slot of a.example is left, and b.example
        blocked = len(await b.lease(10))
        mine = next(r for r in got_a + got_b if "a.example" in r.url and r in got_a)
        await a.ack(mine, [])  # a slot of a.example comes free, for any worker
        after = len(await b.lease(10))
        return len(got_a), len(got_b), blocked, after

    assert workers.run(go()) == (2, 2, 0, 1)


def test_per_host_delay_holds_across_workers(workers: Workers) -> None:
    async def go() -> tuple[int, int, float]:
        a, b = workers.make("w1", delay=0.4), workers.make("w2", delay=0.4)
        await a.open()
        await b.open()
        await a.push([req(str(i)) for i in range(3)])
        start = time.monotonic()
        first = len(await a.lease(5))
        too_soon = len(await b.lease(5))
        assert 0 < b.next_ready_in() <= 0.4  # type: ignore[operator]
        while not await b.lease(5):  # noqa: ASYNC110 - polling is what a worker does
            await asyncio.sleep(0.02)
        return first, too_soon, time.monotonic() - start

    first, too_soon, waited = workers.run(go())
    assert (first, too_soon) == (1, 0)
    assert 0.35 <= waited < 1.5


def test_cooldown_holds_across_workers(workers: Workers) -> None:
    async def go() -> tuple[int, int]:
        a, b = workers.make("w1"), workers.make("w2")
        await a.open()
        await b.open()
        await a.push([req(str(i)) for i in range(3)])
        a.cooldown("a.example", 0.5)
        await asyncio.sleep(0.1)  # the cooldown goes out in the background
        during = len(await b.lease(5))
        await asyncio.sleep(0.5)
        return during, len(await b.lease(5))

    assert workers.run(go()) == (0, 3)


def test_retry_waits_its_delay_and_keeps_its_attempt_count(workers: Workers) -> None:
    async def go() -> tuple[int, int, int]:
        a, b = workers.make("w1"), workers.make("w2")
        await a.open()
        await b.open()
        await a.push([req("flaky")])
        (request,) = await a.lease(1)
        request.attempt += 1
        await a.retry(request, 0.4)
        early = len(await b.lease(1))
        await asyncio.sleep(0.45)
        (again,) = await b.lease(1)
        return early, again.attempt, b.statistics().leased

    assert workers.run(go()) == (0, 1, 1)


def test_fail_and_ack_end_leases_and_the_crawl_finishes(workers: Workers) -> None:
    async def go() -> list[bool]:
        f = workers.make()
        await f.open()
        await f.push([req("a"), req("b")])
        a, b = await f.lease(2)
        await f.fail(a, "http_404")
        await f.ack(b, [])
        states = [f.is_finished()]  # not seeded yet: another worker may still be seeding
        await f.checkpoint(0, b"{}", True)
        states.append(f.is_finished())  # the commit's reply brings the crawl's figures
        assert await f.lease(1) == []
        states.append(f.is_finished())
        assert f.statistics().done == 1 and f.statistics().failed == 1
        return states

    assert workers.run(go()) == [False, True, True]


def test_giving_back_a_request_that_is_not_leased_is_an_error(workers: Workers) -> None:
    async def go() -> None:
        f = workers.make()
        await f.open()
        with pytest.raises(ValueError, match="not leased"):
            await f.ack(req("x"), [])

    workers.run(go())


def test_ack_many_runs_its_acks_together_on_a_bounded_number_of_connections(workers: Workers) -> None:
    # The engine commits the pages of a parse batch with one ack_many() under its commit lock.
    # One script after another, a worker could commit no more pages a second than round trips
    # to Redis fit in it; sent together, each script in flight takes a connection of the pool,
    # and there are never more of those than the bound. The worker's connections carry its name.
    watcher = redis.Redis.from_url(workers.url)
    name = f"crawlkit:{workers.job}:w1"

    def connections() -> int:
        return sum(1 for client in watcher.client_list() if client["name"] == name)

    async def go() -> tuple[int, int, int, Any]:
        # Leases of a minute: no renewal (every lease_ttl / 3) takes a connection of its own
        # while the acks are counted, however slow the machine.
        f = workers.make(concurrency=100, lease_ttl=60.0)
        await f.open()
        await f.push([req(f"p{i}") for i in range(60)])
        before = connections()
        eight = await f.lease(8)
        result = await f.ack_many([(r, [req(f"{r.url.rsplit('/', 1)[1]}-child")]) for r in eight])
        after_eight = connections()
        rest = await f.lease(100)
        await f.ack_many([(r, []) for r in rest])
        after_all = connections()
        await f.checkpoint(1, b"{}", True)
        assert await f.lease(1) == []  # and brings the crawl-wide figures up to date
        return before, after_eight, after_all, (result, len(rest), f.statistics())

    try:
        before, after_eight, after_all, (result, rest, stats) = workers.run(go())
    finally:
        watcher.close()
    assert (result.queued, result.duplicates, rest) == (8, 0, 60)  # 52 pages and 8 children
    assert (stats.done, stats.pending, stats.leased) == (68, 0, 0)
    assert before >= 1
    assert after_eight >= before + 7  # the eight acks were in flight at once
    assert after_all <= before + 16  # 52 more, at most 16 at a time


# -- commits and exactly-once ----------------------------------------------------------------------


def test_an_ack_frees_the_slot_and_queues_links_but_the_request_waits_for_the_commit(
    workers: Workers,
) -> None:
    async def go() -> tuple[Any, ...]:
        a, b = workers.make("w1", concurrency=1), workers.make("w2", concurrency=1)
        await a.open()
        await b.open()
        await a.push([req("parent")])
        (parent,) = await a.lease(1)
        await a.ack(parent, [req("child"), req("again", dont_filter=True)])
        seen_by_b = urls(await b.lease(5))  # the filtered link is queued at once ...
        b_finished = b.is_finished()
        await a.checkpoint(10, b'{"n": 1}', True)
        after_commit = urls(await b.lease(5))  # ... the dont_filter one at the commit
        return seen_by_b, b_finished, after_commit

    seen_by_b, b_finished, after_commit = workers.run(go())
    assert seen_by_b == ["http://a.example/child"]
    assert not b_finished
    assert after_commit == []  # a.example's one slot is b's "child"
    status = job_status(workers.url, workers.job)
    assert status.parts["w1"][1] == 10
    # b's lease of "child" was given back when it closed; "again" came with the commit.
    assert (status.done, status.pending, status.leased) == (1, 2, 0)


def test_reopening_a_worker_id_resumes_its_offset_and_requeues_what_it_held(workers: Workers) -> None:
    async def go() -> tuple[Any, ...]:
        first = workers.make("w1", lease_ttl=0.5)
        await first.open()
        await first.push([req("a"), req("b"), req("c")])
        a, b, _ = await first.lease(3)
        await first.ack(a, [])
        await first.checkpoint(123, b'{"k": 1}', True)
        await first.ack(b, [])  # acked but never committed: its output is cut on resume
        await kill(first)
        again = workers.make("w1", lease_ttl=0.5)
        checkpoint = await again.open()
        leased = urls(await again.lease(5))
        return checkpoint, leased

    checkpoint, leased = workers.run(go())
    assert checkpoint is not None
    assert (checkpoint.output_offset, checkpoint.state, checkpoint.seeded) == (123, b'{"k": 1}', True)
    assert not checkpoint.finished
    assert sorted(leased) == ["http://a.example/b", "http://a.example/c"]


def test_expired_leases_of_a_dead_worker_go_back_to_the_queue(workers: Workers) -> None:
    async def go() -> tuple[list[str], float]:
        dead, alive = workers.make("dead", lease_ttl=0.6), workers.make("alive", lease_ttl=0.6)
        await dead.open()
        await alive.open()
        await dead.push([req("a"), req("b")])
        held = await dead.lease(2)
        await dead.ack(held[0], [])  # acked, not committed: redone as well
        await kill(dead)
        start = time.monotonic()
        got: list[Request] = []
        while len(got) < 2 and time.monotonic() - start < 5:
            got += await alive.lease(5)
            await asyncio.sleep(0.05)
        return sorted(urls(got)), time.monotonic() - start

    got, waited = workers.run(go())
    assert got == ["http://a.example/a", "http://a.example/b"]
    assert 0.5 <= waited < 3.0


def test_a_commit_after_losing_a_lease_applies_nothing_and_stops_the_worker(workers: Workers) -> None:
    async def go() -> None:
        slow, other = workers.make("slow", lease_ttl=0.6), workers.make("other", lease_ttl=0.6)
        await slow.open()
        await other.open()
        await slow.push([req("a")])
        (a,) = await slow.lease(1)
        await slow.ack(a, [])
        assert slow._renewer is not None
        slow._renewer.cancel()  # stalled: it renews nothing for longer than its lease
        deadline = time.monotonic() + 5
        while not await other.lease(1):
            assert time.monotonic() < deadline, "the expired lease was never taken back"
            await asyncio.sleep(0.05)
        with pytest.raises(CommitError, match="lost 1 of its leases"):
            await slow.checkpoint(999, b"{}", True)
        with pytest.raises(CommitError):  # and nothing more from it
            await slow.lease(1)

    workers.run(go())
    status = job_status(workers.url, workers.job)
    assert status.parts["slow"][1] == 0  # its offset was not recorded
    assert status.done == 0


def test_a_worker_id_in_use_is_refused(workers: Workers) -> None:
    async def go() -> None:
        await workers.make("same").open()
        clone = workers.make("same", lease_ttl=0.5)
        with pytest.raises(ConfigError, match="in use by another live process"):
            await clone.open()

    workers.run(go())


def test_a_job_of_another_spider_is_refused(workers: Workers) -> None:
    async def go() -> None:
        await workers.make("w1", spider_name="one").open()
        with pytest.raises(ConfigError, match="belongs to spider 'one'"):
            await workers.make("w2", spider_name="two").open()

    workers.run(go())


def test_state_gone_from_redis_stops_the_worker(workers: Workers) -> None:
    async def go() -> None:
        f = workers.make()
        await f.open()
        await f.push([req("a")])
        client = redis.Redis.from_url(workers.url)
        client.delete(job_prefix(workers.job) + "meta")
        client.close()
        with pytest.raises(CommitError, match="gone from Redis"):
            await f.lease(1)

    workers.run(go())


def test_unreachable_redis_is_a_clear_error_at_open(redis_job: str) -> None:
    f = RedisFrontier("redis://:secret@127.0.0.1:1/0", redis_job, "w1", lambda h: HostLimits(1))
    with pytest.raises(ConfigError, match=r"cannot reach Redis at redis://\*\*\*@127\.0\.0\.1:1/0") as info:
        run(f.open())
    assert "secret" not in str(info.value)


def test_a_workers_connections_carry_its_job_and_id(workers: Workers) -> None:
    # CLIENT SETNAME refuses spaces and non-ASCII: such characters become "_", and the frontier
    # still opens (a refused name would fail every connection).
    assert client_name("shop.2026", "host-1") == "crawlkit:shop.2026:host-1"
    assert client_name("a b", "w\u00e91") == "crawlkit:a_b:w_1"

    async def go() -> list[str]:
        f = workers.make("w 1")
        await f.open()
        watcher = redis.Redis.from_url(workers.url)
        try:
            return [client["name"] for client in watcher.client_list()]
        finally:
            watcher.close()

    assert f"crawlkit:{workers.job}:w_1" in workers.run(go())


def test_commit_error_is_a_frontier_error() -> None:
    assert issubclass(CommitError, FrontierError) and issubclass(CommitError, StorageError)
    assert safe_url("redis://user:pw@h:1/0") == "redis://user:***@h:1/0"
    assert safe_url("redis://h:1/0") == "redis://h:1/0"


# -- the shared state: closing, reset, export, memory ----------------------------------------------


def test_closing_a_worker_gives_back_its_leases_and_keeps_everything_else(workers: Workers) -> None:
    async def go() -> tuple[int, int]:
        a = workers.make("w1")
        await a.open()
        await a.push([req(str(i)) for i in range(5)])
        await a.lease(2)
        await a.close()
        b = workers.make("w2")
        checkpoint = await b.open()
        assert checkpoint is not None and not checkpoint.finished
        return len(await b.lease(10)), b.statistics().seen

    assert workers.run(go()) == (5, 5)


def test_reset_refuses_while_a_worker_runs(workers: Workers) -> None:
    async def go() -> None:
        f = workers.make()
        await f.open()
        await f.push([req("a")])
        with pytest.raises(ConfigError, match="running worker"):
            reset_job(workers.url, workers.job)
        await f.close()
        assert reset_job(workers.url, workers.job) > 0
        assert not job_status(workers.url, workers.job).exists

    workers.run(go())


def test_export_takes_each_part_up_to_its_committed_offset(workers: Workers, tmp_path: Path) -> None:
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "part-w1.jsonl").write_bytes(b'{"n":1}\n{"n":2}\n{"n":"uncommitted"}\n')
    (parts / "part-w2.jsonl").write_bytes(b'{"n":3}\n')

    async def go() -> None:
        for worker, offset in (("w1", 16), ("w2", 8)):
            f = workers.make(worker, part=str(parts / f"part-{worker}.jsonl"))
            await f.open()
            await f.checkpoint(offset, b"{}", True)
            await f.close()

    workers.run(go())
    out = tmp_path / "all.jsonl"
    report = export_job(workers.url, workers.job, out)
    assert out.read_bytes() == b'{"n":1}\n{"n":2}\n{"n":3}\n'
    assert (report.parts, report.lines) == (2, 3)
    assert report.status.finished
    (parts / "part-w2.jsonl").write_bytes(b"")
    with pytest.raises(ConfigError, match="holds 0 bytes but 8 were committed"):
        export_job(workers.url, workers.job, out)


def test_the_seen_set_is_sharded_into_compact_hashes(workers: Workers) -> None:
    async def go() -> None:
        f = workers.make(seen_shards=16)
        await f.open()
        await f.push([req(str(i), host=f"h{i % 7}.example") for i in range(400)])

    workers.run(go())
    client = redis.Redis.from_url(workers.url)
    try:
        keys = list(client.scan_iter(match=f"crawlkit:{{{workers.job}}}:seen:*"))
        assert 1 < len(keys) <= 16
        assert sum(int(client.hlen(k)) for k in keys) == 400
        assert {client.object("encoding", k) for k in keys} == {b"listpack"}
    finally:
        client.close()


def test_redis_gone_mid_crawl_is_waited_for_then_stops_the_worker(tmp_path: Path) -> None:
    if redis_server_binary() is None:
        require_redis("redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()

    async def go() -> float:
        f = RedisFrontier(server.url, "outage", "w1", lambda h: HostLimits(2), retry_timeout=1.0)
        await f.open()
        await f.push([req("a")])
        server.kill()
        start = time.monotonic()
        with pytest.raises(CommitError, match="stayed unreachable for 1 s"):
            await f.lease(1)
        waited = time.monotonic() - start
        with pytest.raises(CommitError):  # and it stays stopped
            await f.push([req("b")])
        await f.close()  # gives up quickly, without raising
        return waited

    try:
        assert 0.9 <= asyncio.run(go()) < 3.0
    finally:
        server.stop()
