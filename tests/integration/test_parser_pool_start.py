"""How the parser pool starts: one worker first, the others in the background.

Real worker processes; the children are read from /proc.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest

from crawlkit.core._runner import new_event_loop
from crawlkit.errors import ParseError
from crawlkit.http import Request
from crawlkit.parsing._callbacks import ParseOutcome, ParseTask
from crawlkit.parsing._pool import ParserPool, PoolStatistics
from crawlspiders.safety_spiders import NoStart, TwoCallbacks
from crawlspiders.slow_start import OpenedFails
from support.workerconfig import pool_config

CONFIG = pool_config(TwoCallbacks, slow="0.02")


def _children() -> set[int]:
    """The pids of this process's children, whichever thread started them."""
    pids: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        pids.update(int(pid) for pid in (task / "children").read_text().split())
    return pids


def _task(i: int) -> ParseTask:
    request = Request(f"http://127.0.0.1:1/page?i={i}", callback="parse_slow")
    body = b"<html><head><title>page</title></head><body>page</body></html>"
    return ParseTask(request, request.url, 200, [("content-type", "text/html")], body, "")


def test_the_pool_is_up_with_one_worker_and_the_others_join_while_it_parses() -> None:
    async def main() -> tuple[list[int], list[int], list[ParseOutcome], PoolStatistics]:
        pool = ParserPool(CONFIG, workers=3, batch_size=2)
        await pool.start()
        try:
            at_start = pool.pids()
            pages = [asyncio.create_task(pool.parse(_task(i))) for i in range(24)]
            deadline = time.monotonic() + 30
            while len(pool.pids()) < 3 and time.monotonic() < deadline:  # noqa: ASYNC110 - no event tells
                await asyncio.sleep(0.01)
            later = pool.pids()
            outcomes = await asyncio.wait_for(asyncio.gather(*pages), 30)
            return at_start, later, outcomes, pool.statistics()
        finally:
            await pool.close()

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        at_start, later, outcomes, stats = runner.run(main())
    assert len(at_start) == 1
    assert len(later) == 3 and at_start[0] in later
    assert [o.error for o in outcomes] == [None] * 24
    urls = sorted(orjson.loads(o.items[0])["url"] for o in outcomes)
    assert urls == sorted(_task(i).url for i in range(24))
    # Workers that joined are the pool's own, not replacements of crashed ones.
    assert stats.workers == 3 and stats.restarts == 0 and stats.crashes == 0


def test_a_pool_closed_while_its_workers_start_stops_them_at_once_and_leaves_no_process() -> None:
    # Each worker takes 1.5 s to import this spider. The pool is closed as soon as its first
    # worker is up, while the other three import: close() must not wait for them to be ready
    # (a crawl of two pages would end that much later), and must leave no process behind.
    config = pool_config(OpenedFails)
    before = _children()

    async def main() -> tuple[set[int], set[int], float]:
        pool = ParserPool(config, workers=4, batch_size=2)
        await pool.start()
        deadline = time.monotonic() + 10
        while len(_children() - before) < 4 and time.monotonic() < deadline:  # noqa: ASYNC110 - no event tells
            await asyncio.sleep(0.01)
        starting = _children() - before
        began = time.monotonic()
        await pool.close()
        return starting, _children() - before, time.monotonic() - began

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        starting, left, took = runner.run(main())
    assert len(starting) == 4, starting  # the one up, and three launched
    assert took < 1.0
    assert left == set()
    for pid in starting:
        assert _state(pid) == "gone"  # exited, and reaped


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


def test_a_spider_that_cannot_start_fails_the_start_with_its_reason_and_leaves_no_process() -> None:
    before = _children()
    config = pool_config(NoStart)

    async def main() -> None:
        pool = ParserPool(config, workers=3, batch_size=2)
        try:
            await pool.start()
        finally:
            await pool.close()

    with asyncio.Runner(loop_factory=new_event_loop) as runner, pytest.raises(ParseError) as failed:
        runner.run(main())
    reason = "could not load the spider: RuntimeError: the spider's database is unreachable"
    assert reason in str(failed.value)
    assert _children() - before == set()
