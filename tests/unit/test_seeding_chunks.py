"""Start requests reach the frontier in chunks: a small one first, so the first request leaves
while the rest are read, then larger ones, none above a thousand."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from crawlkit.core._seeding import push_start_requests
from crawlkit.http import Request
from crawlkit.spider import Spider


class _ManyStarts(Spider):
    name = "many-starts"
    count = 0

    def start_requests(self) -> Iterator[Request]:
        for i in range(self.count):
            yield Request(f"http://127.0.0.1:1/page-{i}")


def _pushes(count: int, more: list[Request] | None = None) -> list[list[str]]:
    pushed: list[list[str]] = []

    async def push(requests: list[Request]) -> None:
        pushed.append([r.url for r in requests])

    spider = _ManyStarts(count=count)
    done = asyncio.run(
        push_start_requests(spider, push, resumed=False, stopping=lambda: False, more=more or [])
    )
    assert done
    return pushed


def test_the_first_chunk_is_small_and_the_next_grow_to_a_thousand() -> None:
    pushed = _pushes(5_000)
    assert [len(chunk) for chunk in pushed] == [64, 256, 1_000, 1_000, 1_000, 1_000, 680]
    expected = [f"http://127.0.0.1:1/page-{i}" for i in range(5_000)]
    assert [url for chunk in pushed for url in chunk] == expected


def test_a_few_start_requests_go_in_one_push() -> None:
    assert [len(chunk) for chunk in _pushes(10)] == [10]


def test_the_pages_of_a_recrawl_follow_in_the_same_chunks() -> None:
    more = [Request(f"http://127.0.0.1:1/again-{i}") for i in range(100)]
    pushed = _pushes(30, more)
    assert [len(chunk) for chunk in pushed] == [64, 66]
    urls = [url for chunk in pushed for url in chunk]
    assert urls[:30] == [f"http://127.0.0.1:1/page-{i}" for i in range(30)]
    assert urls[30:] == [r.url for r in more]


def test_other_tasks_run_while_start_requests_are_read() -> None:
    """A push that does not wait (a fresh job's insert is sent, not awaited) must not let the
    seeder hold the event loop until every start request is read: leased pages go on meanwhile."""
    read = 0

    class _Counting(Spider):
        name = "counting"

        def start_requests(self) -> Iterator[Request]:
            nonlocal read
            for i in range(1_000):
                read += 1
                yield Request(f"http://127.0.0.1:1/page-{i}")

    async def push(requests: list[Request]) -> None:
        pass  # returns without suspending

    async def main() -> list[int]:
        seen: list[int] = []
        seeding = asyncio.create_task(
            push_start_requests(_Counting(), push, resumed=False, stopping=lambda: False)
        )
        while not seeding.done():
            seen.append(read)
            await asyncio.sleep(0)
        return seen

    seen = asyncio.run(main())
    during = [n for n in seen if 0 < n < 1_000]
    assert len(during) >= 10, seen
