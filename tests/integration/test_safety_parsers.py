"""Leaky and hanging callbacks: parser workers recycled, and killed past ``parse_timeout``.

Real parser worker processes, a real callback that sleeps for an hour, real pids.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson

from conftest import Site
from crawlkit import Spider
from crawlkit.core._engine import Engine
from crawlkit.core._runner import new_event_loop, prepared_engine, resolve_settings, run_engine
from crawlkit.errors import ParseTimeout
from crawlkit.http import Request
from crawlkit.parsing._callbacks import ParseOutcome, ParseTask
from crawlkit.parsing._pool import ParserPool, PoolStatistics
from crawlspiders.safety_spiders import LeakyPages, TwoCallbacks
from crawlspiders.spiders import UrlListSpider
from support.workerconfig import pool_config


def run(spider: type[Spider], out: Path, settings: dict[str, Any], **spider_kwargs: Any) -> Engine:
    merged = {"frontier": "memory", "job_dir": str(out.parent / "job"), **settings}
    with prepared_engine(
        spider, resolve_settings(spider, merged), out, spider_kwargs=spider_kwargs, handle_signals=False
    ) as engine:
        run_engine(engine)
    return engine


def items(out: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in out.read_bytes().splitlines()]


def test_workers_are_recycled_after_max_tasks_and_no_response_is_lost(site: Site, tmp_out: Path) -> None:
    count, max_tasks, batch_size = 60, 10, 4
    engine = run(
        LeakyPages,
        tmp_out,
        {"parse_workers": 2, "parse_worker_max_tasks": max_tasks, "parse_batch_size": batch_size},
        base=site.base,
        count=count,
    )
    got = items(tmp_out)
    assert sorted(item["i"] for item in got) == list(range(count))  # every response, once
    pool = engine.parser.statistics()
    # A worker is retired once it has been sent 10 responses, so it parses at most 10 + 3 (the
    # rest of its last batch): 60 responses need at least 5 workers in turn, 2 at a time.
    most_per_worker = max_tasks + batch_size - 1
    least_workers = -(-count // most_per_worker)
    assert pool.recycled >= least_workers - 2
    assert pool.crashes == 0 and pool.restarts == 0 and pool.timeouts == 0
    pids = {item["pid"] for item in got}
    assert len(pids) >= least_workers
    assert engine.stats.ok


def test_workers_are_not_recycled_when_max_tasks_is_0(site: Site, tmp_out: Path) -> None:
    engine = run(
        LeakyPages, tmp_out, {"parse_workers": 2, "parse_worker_max_tasks": 0}, base=site.base, count=40
    )
    assert engine.parser.statistics().recycled == 0
    assert len({item["pid"] for item in items(tmp_out)}) <= 2


def test_a_hanging_callback_is_killed_after_parse_timeout_and_only_its_page_fails(
    site: Site, tmp_out: Path
) -> None:
    count = 30
    began = time.monotonic()
    engine = run(
        LeakyPages,
        tmp_out,
        # Big batches: the hanging page shares its batch with others, which must be parsed again.
        {"parse_workers": 2, "parse_timeout": 1.0, "parse_batch_size": 16, "concurrency": 16},
        base=site.base,
        count=count,
        hang="7",
    )
    took = time.monotonic() - began
    assert took < 15, f"took {took:.1f} s"  # not the hour the callback wanted
    got = sorted(item["i"] for item in items(tmp_out))
    assert got == [i for i in range(count) if i != 7]  # the rest of its batch was parsed again
    stats = engine.stats
    assert dict(stats.failures) == {"parse_timeout": 1}
    assert stats.pages_failed == 1
    pool = engine.parser.statistics()
    assert pool.timeouts == 1 and pool.crashes == 0


def test_a_slow_callback_under_the_timeout_is_left_alone(site: Site, tmp_out: Path) -> None:
    engine = run(
        LeakyPages,
        tmp_out,
        {"parse_workers": 1, "parse_timeout": 1.0, "parse_batch_size": 16},
        base=site.base,
        count=6,
        slow="0.4",  # 6 x 0.4 s in one worker: a batch takes longer than the timeout, a page does not
    )
    assert sorted(item["i"] for item in items(tmp_out)) == list(range(6))
    assert engine.stats.ok and engine.parser.statistics().timeouts == 0


def test_a_worker_whose_pipe_closed_gets_no_pages_and_loses_none() -> None:
    # A worker can die (its input pipe closed) before its reader sees the end of its output. A
    # page handed out meanwhile must go to another worker, not fail as the culprit of a crash
    # nor raise in the engine. Here the one worker's input is closed by hand: it exits, and the
    # page is parsed by its replacement.
    config = pool_config(UrlListSpider)
    request = Request("http://127.0.0.1:1/ok")
    body = b"<html><head><title>ok</title></head><body>ok</body></html>"
    task = ParseTask(request, request.url, 200, [("content-type", "text/html")], body, "")

    async def main() -> tuple[ParseOutcome, PoolStatistics, list[int]]:
        pool = ParserPool(config, workers=1, batch_size=8)
        await pool.start()
        try:
            first = pool.pids()
            (worker,) = pool._workers
            assert worker.proc.stdin is not None
            worker.proc.stdin.close()
            outcome = await asyncio.wait_for(pool.parse(task), 30)
            return outcome, pool.statistics(), first
        finally:
            await pool.close()

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        outcome, stats, first = runner.run(main())
    assert outcome.error is None
    assert [orjson.loads(line)["url"] for line in outcome.items] == [request.url]
    assert stats.crashes == 1 and stats.restarts == 1
    assert first and stats.workers == 1


def _task(i: int, callback: str) -> ParseTask:
    request = Request(f"http://127.0.0.1:1/page?i={i}", callback=callback)
    body = b"<html><head><title>page</title></head><body>page</body></html>"
    return ParseTask(request, request.url, 200, [("content-type", "text/html")], body, "")


def test_the_lone_page_of_a_callback_is_parsed_ahead_of_a_busy_callbacks_batches() -> None:
    # One worker and 16 slow pages, 50 ms each, in its hands or queued for it. Then the one page
    # of another callback comes (the next page of a pagination chain). It must be parsed when
    # the slow callback running now returns, not after the 16 pages that came before it.
    config = pool_config(TwoCallbacks, slow="0.05")
    finished: list[str] = []

    async def parse(pool: ParserPool, task: ParseTask) -> ParseOutcome:
        outcome = await pool.parse(task)
        finished.append(task.request.callback or "")
        return outcome

    async def main() -> list[ParseOutcome]:
        pool = ParserPool(config, workers=1, batch_size=8)
        await pool.start()
        try:
            slow = [asyncio.create_task(parse(pool, _task(i, "parse_slow"))) for i in range(16)]
            await asyncio.sleep(0.03)  # the first slow callback has begun
            stats = pool.statistics()
            assert stats.in_flight + stats.queued == 16 and stats.in_flight >= 1
            quick = asyncio.create_task(parse(pool, _task(99, "parse_quick")))
            return await asyncio.wait_for(asyncio.gather(quick, *slow), 30)
        finally:
            await pool.close()

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        outcomes = runner.run(main())
    assert all(o.error is None for o in outcomes)
    assert [orjson.loads(o.items[0])["callback"] for o in outcomes] == ["parse_quick"] + ["parse_slow"] * 16
    # First in, first out would have put it last, after the 16 slow pages.
    assert finished.index("parse_quick") <= 2, finished


def test_a_hanging_page_parsed_ahead_of_a_batch_is_the_one_that_fails() -> None:
    # The hanging page jumps ahead of the batch in hand, so it is not where the order of sending
    # says it is: the worker's clock must still name it, and the batch must be parsed again.
    config = pool_config(TwoCallbacks, slow="0.1")

    async def main() -> tuple[list[ParseOutcome], PoolStatistics]:
        pool = ParserPool(config, workers=1, batch_size=8, timeout=1.0)
        await pool.start()
        try:
            slow = [asyncio.create_task(pool.parse(_task(i, "parse_slow"))) for i in range(8)]
            await asyncio.sleep(0.03)
            hang = asyncio.create_task(pool.parse(_task(99, "parse_hang")))
            outcomes = await asyncio.wait_for(asyncio.gather(hang, *slow), 30)
            return outcomes, pool.statistics()
        finally:
            await pool.close()

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        outcomes, stats = runner.run(main())
    hang, *slow = outcomes
    assert isinstance(hang.error, ParseTimeout) and hang.error.url.endswith("i=99")
    assert all(o.error is None for o in slow)
    assert sorted(orjson.loads(o.items[0])["url"] for o in slow) == sorted(_task(i, "").url for i in range(8))
    assert stats.timeouts == 1 and stats.crashes == 0
