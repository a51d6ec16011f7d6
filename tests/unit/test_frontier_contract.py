"""The Frontier contract: what the memory, the sqlite and the redis frontiers all promise.

Every test runs against a ``MemoryFrontier``, an opened ``SqliteFrontier`` in ``tmp_path`` and a
``RedisFrontier`` on a job of its own in the real Redis of ``TEST_REDIS_URL`` (see
support/redisserver.py: without one the redis cases are skipped, unless ``TEST_REDIS_REQUIRED=1``),
driven with asyncio.run() and the same fake clocks. Where the shared frontier differs by design
(docs/distributed.md, "Where a shared frontier differs"), its ``Traits`` say so and the case checks
what holds for it instead: Redis times delays by the Redis server's clock, so the cases that move
time wait for real time there, each of their seconds lasting ``REAL_SECOND``. What only one of
them promises stays in test_frontier_memory.py, test_frontier_sqlite.py or test_frontier_redis.py.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from crawlkit.frontier import Checkpoint, Frontier, FrontierStats, HostLimits, MemoryFrontier, PushResult
from crawlkit.frontier.sqlite import SqliteFrontier
from crawlkit.http import Request
from support.frontierkit import Clocks, crawl_a_pagination_chain, drain, limits, listing_positions, req, urls

T = TypeVar("T")
KINDS = ["memory", "sqlite", "redis"]


@dataclass(frozen=True)
class Traits:
    """Where a frontier differs from the in-process ones by design (docs/distributed.md)."""

    # Delays follow the clock given to the frontier; Redis: the server's clock, shared by workers.
    clock_is_injectable: bool = True
    # fetched() frees the host's slot; Redis frees it at the end of the lease, in the same script
    # as the ack, rather than pay a round trip per page.
    frees_slot_at_fetched: bool = True
    # is_finished() waits for a checkpoint that says start_requests() is exhausted: another
    # worker of a shared crawl may still be seeding it.
    finishes_once_seeded: bool = False
    # next_ready_in() is a number until the crawl is over, never None: other workers queue
    # requests without telling this one, so it looks again.
    polls: bool = False
    # statistics().hosts: the hosts in play (with requests pending or leased); Redis: the hosts
    # that can start a request now.
    hosts_in_play: bool = True


TRAITS = {
    "memory": Traits(),
    "sqlite": Traits(),
    "redis": Traits(
        clock_is_injectable=False,
        frees_slot_at_fetched=False,
        finishes_once_seeded=True,
        polls=True,
        hosts_in_play=False,
    ),
}
# On a frontier whose clock cannot be injected, a second of a case lasts this long in real time.
REAL_SECOND = 0.3
# The Redis frontier's poll interval here: so long that next_ready_in() shows the wait it knows
# of (the cases have one worker: nobody else changes the queue).
REDIS_POLL = 60.0


def seconds(kind: str, case_seconds: float) -> float:
    """A case's delay as given to the frontier of ``kind``."""
    return case_seconds if TRAITS[kind].clock_is_injectable else case_seconds * REAL_SECOND


async def advance(kind: str, clock: Clocks, case_seconds: float) -> None:
    """Let time pass: the fake clock moves, or (Redis) real time passes."""
    if TRAITS[kind].clock_is_injectable:
        clock.advance(case_seconds)
    else:
        await asyncio.sleep(case_seconds * REAL_SECOND)


def short_of(kind: str, case_seconds: float) -> float:
    """A time before ``case_seconds`` at which nothing may be ready yet: just before it on a fake
    clock; in real time, well before it, since a busy machine may call a little late."""
    return case_seconds - 0.01 if TRAITS[kind].clock_is_injectable else case_seconds / 2


def assert_ready_in(f: Frontier, kind: str, case_seconds: float) -> None:
    """next_ready_in() is ``case_seconds``; in real time, a little less (time passed since)."""
    got = f.next_ready_in()
    if TRAITS[kind].clock_is_injectable:
        assert got == pytest.approx(case_seconds)
    else:
        assert got is not None
        assert seconds(kind, case_seconds) - 0.1 <= got <= seconds(kind, case_seconds) + 0.005


async def seeding_done(f: Frontier, kind: str) -> None:
    """Record that start_requests() is exhausted where finishing waits for it, as the engine's
    checkpoint does."""
    if TRAITS[kind].finishes_once_seeded:
        await f.checkpoint(0, b"{}", True)


# The Redis server and job of each redis case, by the case's tmp_path (set by the ``kind`` fixture).
_REDIS_JOBS: dict[Path, tuple[str, str]] = {}


def make(
    kind: str,
    tmp_path: Path,
    host_limits: Callable[[str], HostLimits] | None = None,
    clock: Clocks | None = None,
    depth_limit: int = 0,
    **sqlite_options: Any,
) -> Frontier:
    """A frontier of ``kind``, not opened; ``sqlite_options`` go to the sqlite frontier only."""
    clock = clock or Clocks()
    if kind == "memory":
        return MemoryFrontier(host_limits or limits(), depth_limit=depth_limit, clock=clock.mono)
    if kind == "redis":
        from crawlkit.frontier.redis import RedisFrontier

        url, job = _REDIS_JOBS[tmp_path]
        return RedisFrontier(
            url,
            job,
            "w1",
            host_limits or limits(),
            depth_limit=depth_limit,
            spider_name="spider",
            poll_interval=REDIS_POLL,
        )
    sqlite_options.setdefault("spider_name", "spider")
    return SqliteFrontier(
        tmp_path / "frontier.sqlite",
        host_limits or limits(),
        depth_limit=depth_limit,
        clock=clock.mono,
        wall_clock=clock.wall,
        **sqlite_options,
    )


def crawl(
    kind: str,
    tmp_path: Path,
    body: Callable[[Frontier, Clocks], Coroutine[Any, Any, T]],
    host_limits: Callable[[str], HostLimits] | None = None,
    start: float = 1000.0,
    **kwargs: Any,
) -> T:
    """Open a frontier of ``kind``, run ``body`` with it and its clock, close it."""
    clock = Clocks(start)
    frontier = make(kind, tmp_path, host_limits, clock, **kwargs)

    async def go() -> T:
        await frontier.open()
        try:
            return await body(frontier, clock)
        finally:
            await frontier.close()

    return asyncio.run(go())


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    param: str = request.param
    if param != "redis":
        yield param
        return
    url: str = request.getfixturevalue("redis_url")  # skips (or fails in CI) without a Redis
    job: str = request.getfixturevalue("redis_job")  # deleted after the test
    _REDIS_JOBS[tmp_path] = (url, job)
    try:
        yield param
    finally:
        del _REDIS_JOBS[tmp_path]


# -- basics -------------------------------------------------------------------------------------------


def test_satisfies_the_protocol(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, _: Clocks) -> None:
        assert isinstance(f, Frontier)
        assert f.durable is (kind != "memory")

    crawl(kind, tmp_path, body)


def test_empty_frontier(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, _: Clocks) -> None:
        if TRAITS[kind].finishes_once_seeded:
            assert not f.is_finished()  # another worker may still be seeding the crawl
            await seeding_done(f, kind)
        assert f.is_finished()
        assert f.next_ready_in() is None
        assert len(f) == 0
        assert await f.lease(10) == []
        assert f.statistics() == FrontierStats(pending=0, leased=0, seen=0, done=0, failed=0, hosts=0)

    crawl(kind, tmp_path, body)


def test_push_and_lease_one(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, _: Clocks) -> None:
        result = await f.push([req("http://a.test/1")])
        assert result == PushResult(queued=1, duplicates=0, over_depth=0)
        assert len(f) == 1
        assert not f.is_finished()
        assert f.next_ready_in() == 0.0
        assert await f.lease(0) == []
        leased = await f.lease(5)
        assert urls(leased) == ["http://a.test/1"]
        assert len(f) == 0
        assert not f.is_finished()  # leased, not yet given back
        assert await f.lease(5) == []

    crawl(kind, tmp_path, body)


def test_requests_come_back_whole(tmp_path: Path, kind: str) -> None:
    original = req(
        "http://a.test/form",
        callback="parse_item",
        method="POST",
        headers={"X-A": "1"},
        body=b"q=1",
        cb_kwargs={"k": [1, 2]},
        meta={"m": {"n": None}},
        priority=3,
        max_retries=5,
        dont_retry=True,
        depth=2,
    )
    original.attempt = 2

    async def body(f: Frontier, _: Clocks) -> None:
        await f.push([original])
        (r,) = await f.lease(1)
        for name in Request.__slots__:
            if name != "_fingerprint":
                assert getattr(r, name) == getattr(original, name), name
        assert r.fingerprint == original.fingerprint

    crawl(kind, tmp_path, body)


def test_rendered_requests_come_back_with_their_plan(tmp_path: Path, kind: str) -> None:
    plan = req(
        "http://a.test/list",
        wait_for="a.product",
        actions=[{"click": "button#more", "repeat": 3}, {"evaluate": "document.title", "as": "title"}],
        screenshot=True,
        render_timeout=5,
    )
    never = req("http://a.test/plain", render=False)

    async def body(f: Frontier, _: Clocks) -> None:
        await f.push([plan, never])
        back = {r.url: r for r in await f.lease(2)}
        assert back[plan.url].render is True
        assert back[plan.url].render_plan == plan.render_plan
        assert back[never.url].render is False and back[never.url].render_plan is None

    crawl(kind, tmp_path, body)


# -- priority -----------------------------------------------------------------------------------------


def test_priority_order_within_a_host(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, _: Clocks) -> list[str]:
        await f.push(
            [
                req("http://a.test/p0", priority=0),
                req("http://a.test/p5-first", priority=5),
                req("http://a.test/pminus", priority=-1),
                req("http://a.test/p5-second", priority=5),
                req("http://a.test/p10", priority=10),
            ]
        )
        return urls(await f.lease(10))

    assert crawl(kind, tmp_path, body) == [
        "http://a.test/p10",
        "http://a.test/p5-first",
        "http://a.test/p5-second",
        "http://a.test/p0",
        "http://a.test/pminus",
    ]


def test_fifo_for_equal_priority(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, _: Clocks) -> list[str]:
        await f.push([req(f"http://a.test/{i}") for i in range(5)])
        out: list[str] = []
        while batch := await f.lease(2):
            out.extend(urls(batch))
        return out

    assert crawl(kind, tmp_path, body) == [f"http://a.test/{i}" for i in range(5)]


def test_priority_order_across_hosts_pushed_together(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, _: Clocks) -> list[str]:
        await f.push(
            [
                req("http://a.test/low", priority=0),
                req("http://b.test/high", priority=10),
                req("http://c.test/mid", priority=5),
            ]
        )
        return urls(await f.lease(3))

    assert crawl(kind, tmp_path, body) == ["http://b.test/high", "http://c.test/mid", "http://a.test/low"]


def test_priority_order_across_hosts_after_a_later_push(tmp_path: Path, kind: str) -> None:
    # Higher priority is fetched sooner, whichever host it is on: a later priority-10 request
    # for a.test goes before b.test's priority-0 request, which was waiting first.
    async def body(f: Frontier, _: Clocks) -> list[str]:
        await f.push([req("http://b.test/low"), req("http://a.test/low")])
        await f.push([req("http://a.test/urgent", priority=10)])
        return urls(await f.lease(1))

    assert crawl(kind, tmp_path, body) == ["http://a.test/urgent"]


# -- callbacks take turns within a priority ----------------------------------------------------------


def test_callbacks_take_turns_and_each_is_first_in_first_out(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, _: Clocks) -> list[str]:
        await f.push([req(f"http://a.test/item{i}", callback="parse_item") for i in range(4)])
        await f.push([req("http://a.test/list1"), req("http://a.test/list2", callback="parse")])
        return await drain(f, 1)

    # "parse" and None are one callback: its second request waits for a turn of its own.
    assert crawl(kind, tmp_path, body) == [
        "http://a.test/item0",
        "http://a.test/list1",
        "http://a.test/item1",
        "http://a.test/list2",
        "http://a.test/item2",
        "http://a.test/item3",
    ]


def test_priority_still_comes_before_turns(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, _: Clocks) -> list[str]:
        await f.push([req(f"http://a.test/item{i}", callback="parse_item", priority=1) for i in range(3)])
        await f.push([req("http://a.test/list")])
        return await drain(f, 1)

    assert crawl(kind, tmp_path, body) == [
        "http://a.test/item0",
        "http://a.test/item1",
        "http://a.test/item2",
        "http://a.test/list",
    ]


@pytest.mark.parametrize("window", [0, 2])
def test_a_pagination_chain_advances_while_its_items_wait(tmp_path: Path, kind: str, window: int) -> None:
    # First in, first out would put each next listing behind every item found so far: the
    # chain would advance one page per 20 items and end the crawl one page at a time. Taking
    # turns, the next listing comes after one item. (``window``: the sqlite frontier's memory
    # window, so small that most items wait in the database.)
    options = {"host_window": window} if window and kind == "sqlite" else {}

    async def body(f: Frontier, _: Clocks) -> list[str]:
        served = await crawl_a_pagination_chain(f, "http://a.test/list/0")
        await seeding_done(f, kind)
        assert f.is_finished()
        return served

    served = crawl(kind, tmp_path, body, limits(concurrency=1), **options)
    assert len(served) == len(set(served)) == 10 + 10 * 20
    assert listing_positions(served) == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]


# -- dedup ----------------------------------------------------------------------------------------------


def test_duplicates_are_dropped(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, _: Clocks) -> None:
        first = await f.push([req("http://a.test/x?b=2&a=1"), req("http://a.test/y")])
        assert first == PushResult(queued=2, duplicates=0)
        again = await f.push(
            [
                req("http://a.test/x?a=1&b=2"),  # same page, query reordered
                req("http://A.TEST/x?b=2&a=1#frag"),
                req("http://a.test/y"),
                req("http://a.test/z"),
            ]
        )
        assert again == PushResult(queued=1, duplicates=3)
        assert f.statistics().seen == 3
        assert len(f) == 3

    crawl(kind, tmp_path, body)


def test_duplicates_within_one_batch(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, _: Clocks) -> PushResult:
        return await f.push([req("http://a.test/same"), req("http://a.test/same")])

    assert crawl(kind, tmp_path, body) == PushResult(queued=1, duplicates=1)


def test_seen_outlives_the_request(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, _: Clocks) -> PushResult:
        await f.push([req("http://a.test/1")])
        (r,) = await f.lease(1)
        await f.ack(r, [])
        return await f.push([req("http://a.test/1")])

    assert crawl(kind, tmp_path, body) == PushResult(queued=0, duplicates=1)


def test_dont_filter_skips_dedup(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, _: Clocks) -> None:
        await f.push([req("http://a.test/1")])
        result = await f.push(
            [req("http://a.test/1", dont_filter=True), req("http://a.test/1", dont_filter=True)]
        )
        assert result == PushResult(queued=2, duplicates=0)
        assert len(f) == 3
        assert urls(await f.lease(10)) == ["http://a.test/1"] * 3
        assert await f.push([req("http://a.test/1")]) == PushResult(duplicates=1)

    crawl(kind, tmp_path, body)


def test_method_and_body_make_different_requests(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, _: Clocks) -> PushResult:
        return await f.push(
            [
                req("http://a.test/form"),
                req("http://a.test/form", method="POST", body=b"a=1"),
                req("http://a.test/form", method="POST", body=b"a=2"),
                req("http://a.test/form", method="POST", body=b"a=1"),
            ]
        )

    assert crawl(kind, tmp_path, body) == PushResult(queued=3, duplicates=1)


# -- depth ----------------------------------------------------------------------------------------------


def test_depth_limit(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, _: Clocks) -> None:
        result = await f.push([req(f"http://a.test/{d}", depth=d) for d in range(5)])
        assert result == PushResult(queued=3, duplicates=0, over_depth=2)
        assert sorted(urls(await f.lease(10))) == ["http://a.test/0", "http://a.test/1", "http://a.test/2"]

    crawl(kind, tmp_path, body, depth_limit=2)


def test_depth_limit_applies_to_dont_filter_and_ack(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, _: Clocks) -> PushResult:
        await f.push([req("http://a.test/0")])
        (r,) = await f.lease(1)
        return await f.ack(
            r, [req("http://a.test/1", depth=1), req("http://a.test/2", depth=2, dont_filter=True)]
        )

    assert crawl(kind, tmp_path, body, depth_limit=1) == PushResult(queued=1, duplicates=0, over_depth=1)


def test_no_depth_limit(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, _: Clocks) -> PushResult:
        return await f.push([req("http://a.test/deep", depth=10_000)])

    assert crawl(kind, tmp_path, body, depth_limit=0).queued == 1


# -- per-host concurrency -------------------------------------------------------------------------------


def test_per_host_concurrency_limit_holds(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, _: Clocks) -> None:
        await f.push([req(f"http://a.test/{i}") for i in range(5)])
        await f.push([req(f"http://b.test/{i}") for i in range(3)])
        first = await f.lease(100)
        hosts = Counter(r.url.split("/")[2] for r in first)
        assert hosts == {"a.test": 2, "b.test": 3}
        # a.test is saturated: nothing more for it...
        assert await f.lease(100) == []
        # ...but other hosts are still served.
        await f.push([req("http://b.test/late"), req("http://c.test/new")])
        assert sorted(urls(await f.lease(100))) == ["http://b.test/late", "http://c.test/new"]
        assert await f.lease(100) == []
        # Ending one a.test lease frees exactly one slot.
        a_leased = [r for r in first if "a.test" in r.url]
        await f.ack(a_leased[0], [])
        assert urls(await f.lease(100)) == ["http://a.test/2"]
        assert await f.lease(100) == []
        await f.fail(a_leased[1], "http_500")
        assert urls(await f.lease(100)) == ["http://a.test/3"]

    crawl(kind, tmp_path, body, limits(per_host={"a.test": HostLimits(2), "b.test": HostLimits(5)}))


def test_concurrency_one_serialises_a_host(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, _: Clocks) -> list[str]:
        await f.push([req(f"http://a.test/{i}") for i in range(3)])
        await seeding_done(f, kind)
        order: list[str] = []
        while not f.is_finished():
            batch = await f.lease(10)
            assert len(batch) == 1
            order.extend(urls(batch))
            await f.ack(batch[0], [])
        return order

    assert crawl(kind, tmp_path, body, limits(concurrency=1)) == [
        "http://a.test/0",
        "http://a.test/1",
        "http://a.test/2",
    ]


def test_fetched_frees_the_host_slot_and_keeps_the_lease(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, _: Clocks) -> None:
        await f.push([req(f"http://a.test/{i}") for i in range(3)])
        await seeding_done(f, kind)
        (first,) = await f.lease(10)
        assert await f.lease(10) == []  # the host's one slot is taken
        f.fetched(first)
        f.fetched(first)  # once is enough; again changes nothing
        if TRAITS[kind].frees_slot_at_fetched:
            (second,) = await f.lease(10)
            assert await f.lease(10) == []
            assert f.statistics().leased == 2 and not f.is_finished()
            f.fetched(Request("http://a.test/never-leased"))  # ignored
            # The host stays in play while a fetched request is leased: its ack still works.
            await f.ack(second, [])
            await f.ack(first, [req("http://a.test/new")])
        else:
            # The slot is freed when the lease ends (the ack), not at fetched().
            assert await f.lease(10) == []
            f.fetched(Request("http://a.test/never-leased"))  # ignored
            assert f.statistics().leased == 1 and not f.is_finished()
            await f.ack(first, [req("http://a.test/new")])
            (second,) = await f.lease(10)  # the ack freed the one slot, once
            assert await f.lease(10) == []
            await f.ack(second, [])
        assert await drain(f) == ["http://a.test/2", "http://a.test/new"]
        stats = f.statistics()
        assert (stats.done, stats.leased, stats.pending) == (4, 0, 0)
        assert f.is_finished()
        with pytest.raises(ValueError, match="not leased"):
            await f.ack(first, [])

    crawl(kind, tmp_path, body, limits(concurrency=1))


@pytest.mark.parametrize("end", ["retry", "fail", "release"])
def test_a_fetched_request_ends_its_lease_every_way(tmp_path: Path, kind: str, end: str) -> None:
    async def body(f: Frontier, _: Clocks) -> None:
        await f.push([req("http://a.test/0"), req("http://a.test/1")])
        await seeding_done(f, kind)
        (first,) = await f.lease(10)
        f.fetched(first)
        frees = TRAITS[kind].frees_slot_at_fetched
        if frees:
            (second,) = await f.lease(10)
        else:
            assert await f.lease(10) == []  # fetched() freed nothing: the lease's end will
        if end == "retry":
            await f.retry(first, 0.0)
        elif end == "fail":
            await f.fail(first, "http_500")
        else:
            await f.release([first])
        if not frees:
            (second,) = await f.lease(10)  # the end of the lease freed the slot
        assert await f.lease(10) == []  # the slot is the second's, not freed twice
        await f.ack(second, [])
        rest = await drain(f)
        if frees:
            assert rest == ([] if end == "fail" else ["http://a.test/0"])
        else:  # the slot waited for the end of the first lease: what it led to went first
            expected = {"retry": ["http://a.test/0"], "fail": [], "release": ["http://a.test/1"]}[end]
            assert rest == expected
        assert f.is_finished() and f.statistics().leased == 0

    crawl(kind, tmp_path, body, limits(concurrency=1))


def test_host_limits_are_looked_up_per_host(tmp_path: Path, kind: str) -> None:
    calls: list[str] = []

    def host_limits(host: str) -> HostLimits:
        calls.append(host)
        return HostLimits(4)

    async def body(f: Frontier, _: Clocks) -> None:
        await f.push([req("http://a.test/1"), req("http://a.test/2"), req("http://B.test:8080/1")])
        if not TRAITS[kind].hosts_in_play:
            assert f.statistics().hosts == 2  # both ready
        assert len(await f.lease(10)) == 3
        assert sorted(calls) == ["a.test", "b.test"]
        # Both in play; neither can start a request (nothing is pending).
        assert f.statistics().hosts == (2 if TRAITS[kind].hosts_in_play else 0)

    crawl(kind, tmp_path, body, host_limits)


# -- per-host delay -----------------------------------------------------------------------------------


def test_per_host_delay_uses_the_clock(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, clock: Clocks) -> None:
        await f.push([req(f"http://a.test/{i}") for i in range(3)])
        assert urls(await f.lease(10)) == ["http://a.test/0"]
        assert await f.lease(10) == []
        assert_ready_in(f, kind, 1.0)
        await advance(kind, clock, 0.5)
        assert await f.lease(10) == []
        assert_ready_in(f, kind, 0.5)
        await advance(kind, clock, 0.5)
        assert urls(await f.lease(10)) == ["http://a.test/1"]
        await advance(kind, clock, short_of(kind, 1.0))
        assert await f.lease(10) == []
        await advance(kind, clock, 1.0 - short_of(kind, 1.0))
        assert urls(await f.lease(10)) == ["http://a.test/2"]

    crawl(kind, tmp_path, body, limits(concurrency=10, delay=seconds(kind, 1.0)))


def test_delay_of_one_host_does_not_hold_up_another(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, clock: Clocks) -> None:
        await f.push(
            [req("http://a.test/1"), req("http://a.test/2"), req("http://b.test/1"), req("http://b.test/2")]
        )
        assert sorted(urls(await f.lease(10))) == ["http://a.test/1", "http://b.test/1", "http://b.test/2"]
        assert_ready_in(f, kind, 5.0)
        await advance(kind, clock, 5.0)
        assert f.next_ready_in() == pytest.approx(0.0, abs=0.001)
        assert urls(await f.lease(10)) == ["http://a.test/2"]

    a_limits = HostLimits(10, delay=seconds(kind, 5.0))
    host_limits = limits(per_host={"a.test": a_limits, "b.test": HostLimits(10)})
    crawl(kind, tmp_path, body, host_limits)


def test_delay_holds_after_the_host_goes_idle(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, clock: Clocks) -> None:
        await f.push([req("http://a.test/1")])
        (r,) = await f.lease(10)
        await f.ack(r, [])
        await f.push([req("http://a.test/2")])
        assert await f.lease(10) == []
        await advance(kind, clock, 2.0)
        assert urls(await f.lease(10)) == ["http://a.test/2"]

    crawl(kind, tmp_path, body, limits(concurrency=10, delay=seconds(kind, 2.0)))


def test_fake_clock_is_used_not_the_real_one(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, clock: Clocks) -> None:
        await f.push([req("http://a.test/1"), req("http://a.test/2")])
        assert len(await f.lease(10)) == 1
        clock.advance(3600.0)
        # Redis times the delay by its server's clock, which moved a few milliseconds.
        assert len(await f.lease(10)) == (1 if TRAITS[kind].clock_is_injectable else 0)

    crawl(kind, tmp_path, body, limits(concurrency=10, delay=3600.0), start=0.0)


# -- retry, ack, fail, release ---------------------------------------------------------------------------


def test_retry_with_delay_waits_for_its_time(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, clock: Clocks) -> None:
        await f.push([req("http://a.test/flaky")])
        (r,) = await f.lease(1)
        r.attempt += 1
        await f.retry(r, seconds(kind, 5.0))
        await seeding_done(f, kind)
        assert len(f) == 1
        assert not f.is_finished()
        assert f.statistics().leased == 0
        assert_ready_in(f, kind, 5.0)
        early = short_of(kind, 5.0)
        await advance(kind, clock, early)
        assert await f.lease(10) == []
        assert_ready_in(f, kind, 5.0 - early)
        await advance(kind, clock, 5.0 - early)
        again = await f.lease(10)
        assert urls(again) == ["http://a.test/flaky"]
        assert again[0].attempt == 1
        await f.ack(again[0], [])
        assert f.is_finished()

    crawl(kind, tmp_path, body)


def test_retry_without_delay_is_ready_at_once(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, _: Clocks) -> None:
        await f.push([req("http://a.test/1")])
        (r,) = await f.lease(1)
        await f.retry(r, 0)
        assert f.next_ready_in() == 0.0
        assert urls(await f.lease(1)) == [r.url]

    crawl(kind, tmp_path, body)


def test_retry_is_not_a_duplicate_and_other_requests_go_first(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, clock: Clocks) -> None:
        await f.push([req("http://a.test/1"), req("http://a.test/2")])
        first = (await f.lease(1))[0]
        await f.retry(first, seconds(kind, 1.0))
        assert urls(await f.lease(10)) == ["http://a.test/2"]
        await advance(kind, clock, 1.0)
        assert urls(await f.lease(10)) == ["http://a.test/1"]
        assert f.statistics().seen == 2

    crawl(kind, tmp_path, body)


def test_a_retry_without_delay_goes_behind_the_requests_of_its_priority(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, _: Clocks) -> None:
        await f.push([req("http://a.test/1"), req("http://a.test/2"), req("http://a.test/3")])
        first = (await f.lease(1))[0]
        await f.retry(first, 0)
        assert await drain(f) == ["http://a.test/2", "http://a.test/3", "http://a.test/1"]
        assert f.statistics().seen == 3

    crawl(kind, tmp_path, body)


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("memory", {}),
        ("sqlite", {"max_delayed": 10_000}),
        # All but one retry wait in the database, on the wall clock.
        ("sqlite", {"max_delayed": 1}),
    ],
)
def test_retries_come_back_in_time_order(tmp_path: Path, kind: str, options: dict[str, Any]) -> None:
    async def body(f: Frontier, clock: Clocks) -> None:
        await f.push([req(f"http://h{i}.test/") for i in range(3)])
        leased = await f.lease(3)
        for r, delay in zip(leased, (3.0, 1.0, 2.0), strict=True):
            await f.retry(r, delay)
        assert f.next_ready_in() == pytest.approx(1.0)
        seen: list[str] = []
        for _ in range(3):
            clock.advance(1.0)
            seen.extend(urls(await f.lease(10)))
        assert seen == ["http://h1.test/", "http://h2.test/", "http://h0.test/"]
        assert f.next_ready_in() is None

    crawl(kind, tmp_path, body, **options)


def test_giving_back_what_is_not_leased_is_an_error(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, _: Clocks) -> None:
        await f.push([req("http://a.test/leased")])
        await seeding_done(f, kind)
        (leased,) = await f.lease(1)
        stranger = req("http://a.test/never-leased")
        with pytest.raises(ValueError, match="not leased"):
            await f.ack(stranger, [req("http://a.test/link")])
        with pytest.raises(ValueError, match="not leased"):
            await f.fail(stranger, "x")
        with pytest.raises(ValueError, match="not leased"):
            await f.retry(stranger, 1.0)
        await f.release([stranger])  # a no-op: the engine releases after a cancelled ack
        # Nothing of that touched the real lease, and the refused ack queued nothing.
        assert (f.statistics().leased, f.statistics().pending) == (1, 0)
        await f.ack(leased, [])
        await f.release([leased])  # given back already: a no-op, not a second fetch
        assert f.is_finished()
        with pytest.raises(ValueError, match="not leased"):
            await f.ack(leased, [])

    crawl(kind, tmp_path, body)


def test_ack_pushes_new_requests(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, _: Clocks) -> None:
        await f.push([req("http://a.test/0")])
        (r,) = await f.lease(1)
        result = await f.ack(
            r,
            [
                req("http://a.test/1", depth=1),
                req("http://b.test/1", depth=1),
                req("http://a.test/0", depth=1),
            ],
        )
        assert result == PushResult(queued=2, duplicates=1)
        stats = f.statistics()
        assert (stats.pending, stats.leased, stats.done, stats.seen) == (2, 0, 1, 3)
        assert sorted(urls(await f.lease(10))) == ["http://a.test/1", "http://b.test/1"]

    crawl(kind, tmp_path, body)


def _graph_links(request: Request) -> list[Request]:
    """Page i of a 200-page graph over 4 hosts links to 2i+1, 2i+2 and back to i//2."""
    i = int(request.url.rsplit("/", 1)[1])
    return [req(f"http://h{j % 4}.test/{j}") for j in (2 * i + 1, 2 * i + 2, i // 2) if j < 200]


@pytest.mark.parametrize("group", [1, 7, 64])
def test_ack_many_does_what_acks_one_by_one_do(tmp_path: Path, kind: str, group: int) -> None:
    async def first() -> tuple[list[str], PushResult]:
        f = make(kind, tmp_path, host_window=2) if kind == "sqlite" else make(kind, tmp_path)
        await f.open()
        try:
            await f.push([req("http://h0.test/0")])
            await seeding_done(f, kind)
            served: list[str] = []
            total = PushResult()
            while batch := await f.lease(group):
                served.extend(urls(batch))
                acks = [(r, _graph_links(r)) for r in batch]
                if group == 1:
                    for r, links in acks:
                        total.add(await f.ack(r, links))
                else:
                    total.add(await f.ack_many(acks))
            assert f.is_finished()
            await f.checkpoint(1, b"{}", True)
        finally:
            await f.close()
        return served, total

    served, total = asyncio.run(first())
    assert sorted(served) == sorted(f"http://h{j % 4}.test/{j}" for j in range(200))
    assert (total.queued, total.duplicates) == (199, 200)  # each page once; every back link known

    async def reopened() -> None:
        # A durable frontier keeps what the checkpoint recorded.
        f = make(kind, tmp_path)
        assert await f.open() == Checkpoint(output_offset=1, state=b"{}", seeded=True, finished=True)
        assert f.statistics().done == 200
        await f.close()

    if kind == "sqlite":
        asyncio.run(reopened())


def test_fail_counts_and_finishes(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, _: Clocks) -> None:
        await f.push([req("http://a.test/1"), req("http://a.test/2")])
        await seeding_done(f, kind)
        a, b = await f.lease(2)
        await f.fail(a, "http_404")
        assert not f.is_finished()
        await f.ack(b, [])
        assert f.is_finished()
        stats = f.statistics()
        assert (stats.done, stats.failed, stats.pending, stats.leased) == (1, 1, 0, 0)

    crawl(kind, tmp_path, body)


def test_release_returns_requests_to_pending(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, _: Clocks) -> None:
        await f.push([req(f"http://a.test/{i}") for i in range(3)])
        await seeding_done(f, kind)
        leased = await f.lease(10)
        assert len(leased) == 2
        assert f.statistics().leased == 2
        await f.release(leased)
        stats = f.statistics()
        assert (stats.pending, stats.leased, stats.done, stats.failed) == (3, 0, 0, 0)
        again = await f.lease(10)
        assert len(again) == 2  # the host's slots were freed too
        assert set(urls(again)) <= {f"http://a.test/{i}" for i in range(3)}
        await f.release(again)
        assert sorted(await drain(f)) == [f"http://a.test/{i}" for i in range(3)]
        assert f.is_finished()

    crawl(kind, tmp_path, body, limits(concurrency=2))


def test_is_finished_and_next_ready_in_lifecycle(tmp_path: Path, kind: str) -> None:
    async def body(f: Frontier, _: Clocks) -> None:
        if TRAITS[kind].finishes_once_seeded:
            assert not f.is_finished() and f.next_ready_in() is not None  # it waits for seeding
            await seeding_done(f, kind)
        assert f.is_finished() and f.next_ready_in() is None
        await f.push([req("http://a.test/1")])
        assert not f.is_finished() and f.next_ready_in() == 0.0
        (r,) = await f.lease(1)
        assert not f.is_finished()
        wait = f.next_ready_in()
        if TRAITS[kind].polls:  # nothing pending here, but another worker may queue some
            assert wait is not None and wait > 0
        else:
            assert wait is None  # nothing pending, one leased
        await f.ack(r, [])
        assert f.is_finished() and f.next_ready_in() is None

    crawl(kind, tmp_path, body)


# -- a randomised run --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """A random crawl. ``rich`` adds link priorities, releases, attempt counts and checkpoints."""

    seed: int
    hosts: int
    pages: int
    steps: int
    rich: bool


_PLAIN = Scenario(seed=1234, hosts=4, pages=60, steps=5000, rich=False)


def _rich(seed: int) -> Scenario:
    return Scenario(seed=seed, hosts=6, pages=80, steps=6000, rich=True)


@pytest.mark.parametrize(
    ("kind", "scenario", "options"),
    [
        pytest.param("memory", _PLAIN, {}, id="memory-plain"),
        pytest.param("sqlite", _PLAIN, {}, id="sqlite-plain"),
        pytest.param("memory", _rich(1), {}, id="memory-rich-1"),
        pytest.param("sqlite", _rich(1), {"host_window": 2, "max_hosts": 2}, id="sqlite-rich-1-window2"),
        pytest.param("sqlite", _rich(2), {"host_window": 4, "max_hosts": 3}, id="sqlite-rich-2-window4"),
        pytest.param("sqlite", _rich(3), {"host_window": 32, "max_hosts": 1024}, id="sqlite-rich-3-window32"),
    ],
)
def test_randomised_crawl_respects_limits_and_handles_every_request_once(
    tmp_path: Path, kind: str, scenario: Scenario, options: dict[str, Any]
) -> None:
    rng = random.Random(scenario.seed)
    hosts = {
        f"h{i}.test": HostLimits(concurrency=rng.randint(1, 3), delay=rng.choice([0.0, 0.0, 0.5]))
        for i in range(scenario.hosts)
    }
    handled: Counter[str] = Counter()
    in_flight: Counter[str] = Counter()  # leased and not yet fetched, per host
    fetched: set[int] = set()  # ids of leased requests whose fetch is over
    last_start: dict[str, float] = {}
    attempts: Counter[str] = Counter()

    def new_links(n: int) -> list[Request]:
        links: list[Request] = []
        for _ in range(n):
            url = f"http://h{rng.randrange(scenario.hosts)}.test/p{rng.randrange(scenario.pages)}"
            links.append(req(url, depth=1, priority=rng.randint(0, 2) if scenario.rich else 0))
        return links

    async def body(f: Frontier, clock: Clocks) -> FrontierStats:
        await f.push(new_links(10))
        leased: list[Request] = []
        for step in range(scenario.steps):
            if f.is_finished():
                break
            if f.next_ready_in() is None:
                assert leased, "nothing pending or leased, yet not finished"
            for r in await f.lease(rng.randint(1, 4)):
                host = r.url.split("/")[2]
                in_flight[host] += 1
                assert in_flight[host] <= hosts[host].concurrency
                if hosts[host].delay and host in last_start:
                    assert clock.now - last_start[host] >= hosts[host].delay - 1e-9
                last_start[host] = clock.now
                leased.append(r)
            for r in leased:
                if id(r) not in fetched and rng.random() < 0.3:
                    f.fetched(r)  # the slot is free, the request stays leased
                    fetched.add(id(r))
                    in_flight[r.url.split("/")[2]] -= 1
            rng.shuffle(leased)
            while leased and rng.random() < 0.6:
                r = leased.pop()
                host = r.url.split("/")[2]
                if id(r) in fetched:
                    fetched.discard(id(r))
                else:
                    in_flight[host] -= 1
                roll = rng.random()
                if roll < 0.15 and attempts[r.url] < 2:
                    attempts[r.url] += 1
                    if scenario.rich:
                        r.attempt += 1
                    await f.retry(r, rng.choice([0.0, 0.3, 1.0]))
                elif roll < 0.2:
                    await f.fail(r, "http_500")
                    handled[r.url] += 1
                elif scenario.rich and roll < 0.25:
                    await f.release([r])
                else:
                    await f.ack(r, new_links(rng.randint(0, 3)))
                    handled[r.url] += 1
            if scenario.rich and step % 200 == 0:
                await f.checkpoint(step, b"{}", True)
            clock.advance(rng.choice([0.0, 0.1, 0.25]))
        assert f.is_finished()
        return f.statistics()

    stats = crawl(kind, tmp_path, body, limits(per_host=hosts), **options)
    assert stats.pending == 0 and stats.leased == 0
    assert sum(handled.values()) == stats.done + stats.failed == stats.seen
    assert all(count == 1 for count in handled.values())
