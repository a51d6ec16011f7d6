"""Links a parser worker sent before are not sent again: real worker processes, a real crawl.

The frontier would drop them anyway; what matters is that none that it would keep is lost, and
that the crawl counts them as it did.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from conftest import Site
from crawlkit import crawl
from crawlkit.core._runner import new_event_loop
from crawlkit.http import Request
from crawlkit.parsing._callbacks import ParseOutcome, ParseTask
from crawlkit.parsing._pool import ParserPool
from crawlkit.parsing._worker import WorkerConfig
from crawlkit.spider._loader import ref_for_class
from crawlspiders.spiders import GraphSpider, LinkEchoSpider
from support.testsite import reachable

BASE = "http://127.0.0.1:1"


def page(path: str, *anchors: str, depth: int = 0) -> ParseTask:
    """A page at ``depth`` with an ``<a>`` for each of ``anchors`` ("HREF" or "HREF CLASS")."""
    request = Request(BASE + path)
    request.depth = depth
    pairs = (anchor.partition(" ") for anchor in anchors)
    html = "".join(f'<a href="{href}" class="{cls}">x</a>' for href, _, cls in pairs)
    body = f"<html><head><title>t</title></head><body>{html}</body></html>".encode()
    return ParseTask(request, request.url, 200, [("content-type", "text/html")], body, "")


def parse_in_order(tasks: list[ParseTask], depth_limit: int = 0) -> list[ParseOutcome]:
    """Each task parsed by one real worker process, one after the other."""
    config = WorkerConfig(
        spider=ref_for_class(LinkEchoSpider),
        spider_kwargs={},
        serialize_items=True,
        max_response_size=1 << 20,
        log_level="CRITICAL",
        depth_limit=depth_limit,
    )

    async def main() -> list[ParseOutcome]:
        pool = ParserPool(config, workers=1, batch_size=8)
        await pool.start()
        try:
            return [await asyncio.wait_for(pool.parse(task), 30) for task in tasks]
        finally:
            await pool.close()

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main())


def links(outcome: ParseOutcome) -> list[str]:
    return [r.url.removeprefix(BASE) for r in outcome.requests]


def test_a_worker_does_not_send_a_link_twice() -> None:
    first, second, third = parse_in_order(
        [page("/1", "/a", "/b"), page("/2", "/a", "/c", "/b#top"), page("/3", "/c", "/d")]
    )
    assert links(first) == ["/a", "/b"] and first.duplicates == 0
    assert links(second) == ["/c"] and second.duplicates == 2
    assert links(third) == ["/d"] and third.duplicates == 1


def test_a_request_that_cannot_be_sent_is_dropped_alone_and_its_page_links_go_once() -> None:
    # The first page yields a request that cannot be pickled: it alone is dropped (and named), the
    # page's other link goes out with it, and is then not sent again with the second page.
    first, second = parse_in_order([page("/1", "/a", "/x unsendable"), page("/2", "/a")])
    assert links(first) == ["/a"] and first.error is None
    assert [url.removeprefix(BASE) for url in first.unsendable_requests] == ["/x"]
    assert links(second) == [] and second.duplicates == 1


def test_links_over_the_depth_limit_go_to_the_frontier_every_time() -> None:
    deep = [page("/1", "/a", depth=1), page("/2", "/a", depth=1)]  # /a would be at depth 2
    first, second = parse_in_order(deep, depth_limit=1)
    assert links(first) == links(second) == ["/a"]
    assert second.duplicates == 0
    first, second = parse_in_order(deep, depth_limit=2)
    assert links(first) == ["/a"] and links(second) == []


def _graph(site: Site, out: Path, workers: int, frontier: str) -> tuple[Any, list[int], Counter[str]]:
    site.reset()
    settings = {
        "frontier": frontier,
        "job_dir": str(out.parent / f"job-{workers}-{frontier}"),
        "parse_workers": workers,
        "concurrency": 16,
    }
    stats = crawl(GraphSpider, out, settings=settings, handle_signals=False, base=site.base, size=800)
    numbers = [orjson.loads(line)["n"] for line in out.read_bytes().splitlines()]
    return stats, numbers, Counter(entry.path for entry in site.log.entries("/graph"))


def test_a_crawl_with_workers_counts_and_fetches_as_one_without(site: Site, tmp_path: Path) -> None:
    # Every graph page links five others, each in several forms, and an offsite page: most links
    # are duplicates. Inline parsing (no worker) leaves every one of them to the frontier.
    inline, inline_numbers, _ = _graph(site, tmp_path / "inline.jsonl", 0, "memory")
    for frontier in ("memory", "sqlite"):
        stats, numbers, served = _graph(site, tmp_path / f"pool-{frontier}.jsonl", 2, frontier)
        assert sorted(numbers) == sorted(inline_numbers) == sorted(reachable(800))
        assert len(served) == 800 and set(served.values()) == {1}  # every page, fetched once
        assert stats.duplicates == inline.duplicates > 800
        assert stats.requests_queued == inline.requests_queued
        assert stats.filtered == inline.filtered
        assert stats.ok
