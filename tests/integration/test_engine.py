"""The engine end to end, against the real local test site, with real parser processes."""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import Site
from crawlkit import CrawlStats, Request, Spider, crawl
from crawlkit.core._engine import Engine
from crawlkit.core._runner import resolve_settings, run_engine
from crawlkit.errors import ConfigError
from crawlkit.frontier import Checkpoint, HostLimits, MemoryFrontier, PushResult
from crawlspiders.slow_start import OpenedFails, parser_workers_of
from crawlspiders.spiders import (
    ClosingSpider,
    DataclassSpider,
    DepthSpider,
    GraphSpider,
    MetaSpider,
    RetryControlSpider,
    ShopChainSpider,
    StateInCallbackSpider,
    UrlListSpider,
)
from support.testsite import charset_text, reachable

FAST_RETRY = {"retry_backoff_base": 0.05, "retry_backoff_max": 0.2}


def run(
    spider: type[Spider], out: Path, frontier: str = "memory", **kwargs: Any
) -> tuple[CrawlStats, list[dict[str, Any]]]:
    settings: dict[str, Any] = {"frontier": frontier, "job_dir": str(out.parent / "job"), "parse_workers": 2}
    settings.update(kwargs.pop("settings", {}))
    stats = crawl(spider, out, settings=settings, handle_signals=False, **kwargs)
    # The durable frontier really was used (an empty frontier once passed for "none given").
    assert (out.parent / "job" / "frontier.sqlite").exists() == (settings["frontier"] == "sqlite")
    lines = out.read_bytes().splitlines()
    return stats, [orjson.loads(line) for line in lines]


@pytest.mark.parametrize("frontier", ["memory", "sqlite"])
def test_graph_crawl_writes_every_page_once(site: Site, tmp_out: Path, frontier: str) -> None:
    size = 1200
    stats, items = run(
        GraphSpider, tmp_out, frontier, base=site.base, size=size, settings={"concurrency": 32}
    )
    expected = reachable(size)
    assert len(expected) == size
    numbers = [item["n"] for item in items]
    assert sorted(numbers) == sorted(expected)  # every page, no duplicates
    # Every URL variant (fragment, query order, scheme case, dot segments) was deduplicated:
    # the server saw each graph page exactly once.
    served = Counter(entry.path for entry in site.log.entries("/graph"))
    assert len(served) == size and set(served.values()) == {1}
    assert stats.pages == size and stats.items == size
    assert stats.duplicates > size  # each page links its first target in 7 forms
    assert stats.filtered["offsite"] == size  # one offsite link a page, never fetched
    assert stats.filtered["scheme"] == 0  # follow_all() makes no request of mailto:, javascript:, tel:
    assert stats.ok and stats.pages_failed == 0


def test_inline_parsing_gives_the_same_items(site: Site, tmp_out: Path) -> None:
    _, items = run(GraphSpider, tmp_out, base=site.base, size=300, settings={"parse_workers": 0})
    assert sorted(item["n"] for item in items) == sorted(reachable(300))


def test_retries_back_off_then_succeed(site: Site, tmp_out: Path) -> None:
    stats, items = run(
        UrlListSpider,
        tmp_out,
        base=site.base,
        paths="/flaky/a?fail=2,/drop/b?fail=1",
        settings={"retry_backoff_base": 0.2, "retry_backoff_max": 1.0},
    )
    assert {item["request_url"].split("?")[0].rsplit("/", 2)[-2] for item in items} == {"flaky", "drop"}
    times = site.log.times("/flaky/a")
    assert len(times) == 3
    # Exponential backoff with jitter: at least 0.2 s, then at least 0.4 s.
    assert times[1] - times[0] >= 0.2 and times[2] - times[1] >= 0.4
    # aiohttp itself retries an idempotent request once when a reused keep-alive connection is
    # dropped (the server may have closed it while idle), so the drop may not reach crawlkit.
    assert site.log.count("/drop/b") == 2
    assert stats.retry_reasons["http_503"] == 2 and stats.retries in (2, 3)
    assert stats.ok


@pytest.mark.parametrize("mode", ["delta", "date"])
def test_retry_after_is_honoured(site: Site, tmp_out: Path, mode: str) -> None:
    stats, items = run(
        UrlListSpider,
        tmp_out,
        base=site.base,
        paths=f"/retry-after/k-{mode}?seconds=2&mode={mode}",
        settings=FAST_RETRY,
    )
    times = site.log.times(f"/retry-after/k-{mode}")
    assert len(times) == 2 and len(items) == 1
    # An HTTP date has one-second resolution, so it can come up to a second short.
    assert times[1] - times[0] >= (1.95 if mode == "delta" else 1.0)
    assert stats.retry_reasons["http_429"] == 1


def test_retry_after_is_capped(site: Site, tmp_out: Path) -> None:
    run(
        UrlListSpider,
        tmp_out,
        base=site.base,
        paths="/retry-after/capped?seconds=3600",
        settings={**FAST_RETRY, "retry_after_max": 0.5},
    )
    times = site.log.times("/retry-after/capped")
    assert len(times) == 2 and 0.45 <= times[1] - times[0] < 5


def test_retries_give_up_and_count_the_failure(site: Site, tmp_out: Path) -> None:
    stats, items = run(
        UrlListSpider,
        tmp_out,
        base=site.base,
        paths="/status/503,/status/404,/ok",
        settings={**FAST_RETRY, "max_retries": 2},
    )
    assert site.log.count("/status/503") == 3  # the first attempt and 2 retries
    assert site.log.count("/status/404") == 1  # 404 is not retried
    assert [item["url"].rsplit("/", 1)[-1] for item in items] == ["ok"]
    assert stats.failures == Counter({"http_503": 1, "http_404": 1})
    assert not stats.ok and stats.pages_failed == 2
    # The 503 failed with RetriesExhausted: same reason key, and the summary says how many tries.
    assert stats.start_failures == {
        site.url("/status/503"): "http_503: HTTP 503 (after 3 attempts)",
        site.url("/status/404"): "http_404: HTTP 404",
    }


def test_backoff_does_not_hold_a_worker(site: Site, tmp_out: Path) -> None:
    # One worker in all. The flaky page waits 1 s before its retry; meanwhile the one worker must
    # fetch the other pages instead of sleeping.
    paths = ",".join(["/flaky/slow?fail=1"] + [f"/ok?i={i}" for i in range(10)])
    run(
        UrlListSpider,
        tmp_out,
        base=site.base,
        paths=paths,
        settings={"concurrency": 1, "retry_backoff_base": 1.0, "retry_backoff_max": 1.0},
    )
    retry_at = site.log.times("/flaky/slow")[1]
    assert all(t < retry_at for t in site.log.times("/ok"))
    assert site.log.count("/ok") == 10


def test_dead_host_fails_cleanly(tmp_out: Path) -> None:
    import socket

    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stats, items = run(
        UrlListSpider, tmp_out, base=f"http://127.0.0.1:{port}", paths="/a", settings=FAST_RETRY
    )
    assert items == [] and stats.failures == Counter({"connect": 1}) and stats.retries == 3


def test_depth_limit_holds(site: Site, tmp_out: Path) -> None:
    stats, items = run(DepthSpider, tmp_out, base=site.base, settings={"depth_limit": 3})
    assert sorted(item["depth"] for item in items) == [0, 1, 2, 3]
    assert site.log.count("/depth") == 4
    assert stats.filtered["depth"] == 1


def test_a_raising_callback_is_counted_and_the_crawl_goes_on(site: Site, tmp_out: Path) -> None:
    stats, items = run(UrlListSpider, tmp_out, base=site.base, paths="/callback-raises,/ok,/status/200")
    urls = sorted(item["url"].rsplit("/", 1)[-1] for item in items)
    # Items yielded before the exception are kept; the page is counted as failed.
    assert urls == ["200", "callback-raises", "ok"]
    assert stats.failures == Counter({"callback_error": 1})


def test_a_dying_parser_process_is_replaced(site: Site, tmp_out: Path) -> None:
    paths = ",".join(["/callback-exits"] + [f"/ok?i={i}" for i in range(40)])
    stats, items = run(UrlListSpider, tmp_out, base=site.base, paths=paths)
    assert len(items) == 40
    assert stats.failures == Counter({"parser_crashed": 1})


def test_redirects_are_followed_and_loops_stopped(site: Site, tmp_out: Path) -> None:
    stats, items = run(
        UrlListSpider,
        tmp_out,
        base=site.base,
        paths="/redirect/3,/redirect-loop/a",
        settings={"max_redirects": 5},
    )
    assert len(items) == 1 and items[0]["url"] == site.url("/ok")
    assert items[0]["request_url"] == site.url("/redirect/3")
    assert stats.failures == Counter({"redirects": 1})


# A byte order mark exists only for Unicode; an undeclared page is read as UTF-8.
CHARSET_CASES = [
    (name, via)
    for name in ("utf-8", "windows-1252", "iso-8859-2", "shift_jis", "gb2312")
    for via in ("header", "meta")
] + [("utf-8", "bom"), ("utf-8", "none"), ("utf-16-le", "bom"), ("utf-16-be", "bom")]


@pytest.mark.parametrize(("name", "via"), CHARSET_CASES)
def test_pages_are_decoded_in_their_charset(site: Site, tmp_path: Path, name: str, via: str) -> None:
    out = tmp_path / "items.jsonl"
    _, items = run(UrlListSpider, out, base=site.base, paths=f"/charset/{name}?via={via}")
    assert charset_text(name) in items[0]["text"]


def test_meta_and_cb_kwargs_travel_with_requests(site: Site, tmp_out: Path) -> None:
    _, items = run(MetaSpider, tmp_out, base=site.base)
    assert items == [{"trail": ["start", "ok"], "origin": site.url("/ok"), "status": 200}]


def test_spider_state_in_a_callback_is_an_error_that_explains(site: Site, tmp_out: Path) -> None:
    stats, items = run(StateInCallbackSpider, tmp_out, base=site.base)
    assert items == [] and stats.failures == Counter({"callback_error": 1})


def test_close_spider_stops_the_crawl(site: Site, tmp_out: Path) -> None:
    stats, items = run(ClosingSpider, tmp_out, base=site.base, settings={"concurrency": 2})
    assert stats.stop_reason == "close_spider: enough"
    assert 1 <= len(items) < 50


def test_pipelines_change_drop_and_fail_items(site: Site, tmp_out: Path) -> None:
    stats, items = run(
        UrlListSpider,
        tmp_out,
        base=site.base,
        paths="/ok,/status/200,/charset/utf-8?via=header",
        settings={"pipelines": ["crawlspiders.spiders:Uppercase", "crawlspiders.spiders:AsyncTagger"]},
    )
    titles = sorted(item["title"] for item in items)
    assert all(item["tagged"] == "urls" for item in items)
    assert titles == [t.upper() for t in titles] and len(items) + stats.items_dropped == 3


@pytest.mark.parametrize("frontier", ["memory", "sqlite"])
def test_per_host_concurrency_holds(site: Site, tmp_out: Path, frontier: str) -> None:
    # A host's slot is free once its response is read (the page is parsed and committed after):
    # the server must still never see more than 3 requests at once.
    paths = ",".join(f"/slow?delay=0.1&i={i}" for i in range(30))
    run(
        UrlListSpider,
        tmp_out,
        frontier,
        base=site.base,
        paths=paths,
        settings={"concurrency": 16, "concurrency_per_host": 3},
    )
    assert site.log.count("/slow") == 30
    assert site.log.max_in_flight("/slow") == 3


def test_requests_identify_crawlkit(site: Site, tmp_out: Path) -> None:
    import crawlkit

    run(UrlListSpider, tmp_out, base=site.base, paths="/ok")
    assert site.log.entries("/ok")[0].user_agent == f"crawlkit/{crawlkit.__version__}"


def test_per_request_retry_controls(site: Site, tmp_out: Path) -> None:
    # Throttling off: a host answering 503 is otherwise (rightly) rested longer after each wave.
    settings = {**FAST_RETRY, "max_retries": 3, "autothrottle": False}
    stats, _ = run(RetryControlSpider, tmp_out, base=site.base, settings=settings)
    paths = Counter(entry.query for entry in site.log.entries("/status/503"))
    assert paths == Counter({"r=never": 1, "r=once": 2, "r=five": 6})
    assert stats.retries == 1 + 5 and stats.failures == Counter({"http_503": 3})


def test_dataclass_items_with_datetimes_are_written_as_json(site: Site, tmp_out: Path) -> None:
    _, items = run(DataclassSpider, tmp_out, base=site.base)
    assert items == [{"url": site.url("/ok"), "seen": "2026-11-26T12:30:00+00:00", "tags": ["a", "ü"]}]
    assert "ü".encode() in tmp_out.read_bytes()  # UTF-8, not \\u escapes


class _SlowFirstCommit(MemoryFrontier):
    """A memory frontier whose first ``ack_many`` takes a second, as a slow disk might."""

    def __init__(self, host_concurrency: int) -> None:
        super().__init__(host_limits=lambda host: HostLimits(concurrency=host_concurrency, delay=0.0))
        self.first_commit_ended: float | None = None

    async def ack_many(self, acks: Sequence[tuple[Request, Sequence[Request]]]) -> PushResult:
        if self.first_commit_ended is None:
            await asyncio.sleep(1.0)
            self.first_commit_ended = time.monotonic()
        return await super().ack_many(acks)


def _crawl_with_a_slow_first_commit(
    site: Site, out: Path, concurrency: int, host_concurrency: int
) -> tuple[list[float], float]:
    """Four pages; the first commit takes a second. When each page was fetched, and when that commit ended."""
    paths = ",".join(f"/ok?i={i}" for i in range(4))
    settings = resolve_settings(
        UrlListSpider, {"concurrency": concurrency, "parse_workers": 1, "obey_robots": False}
    )
    frontier = _SlowFirstCommit(host_concurrency)
    engine = Engine(
        UrlListSpider,
        settings,
        out,
        spider_kwargs={"base": site.base, "paths": paths},
        frontier=frontier,
        handle_signals=False,
    )
    stats = run_engine(engine)
    assert stats.ok and stats.items == 4
    assert frontier.first_commit_ended is not None
    fetched = site.log.times("/ok")
    assert len(fetched) == 4
    return fetched, frontier.first_commit_ended


@pytest.mark.parametrize("host_concurrency", [1, 4])
def test_a_slow_commit_does_not_hold_a_fetch_slot(site: Site, tmp_out: Path, host_concurrency: int) -> None:
    # One slot in all (and maybe one for the host). While the first page's commit waits, the
    # slot fetches the next page: neither the crawl's slot nor the host's is held by a commit.
    fetched, commit_ended = _crawl_with_a_slow_first_commit(site, tmp_out, 1, host_concurrency)
    # The second fetch started during the first commit, not after it.
    assert fetched[1] < commit_ended


def test_pages_waiting_for_the_commit_lock_hold_no_slot(site: Site, tmp_out: Path) -> None:
    # Two slots, four worker tasks. The first page's commit takes a second; the pages parsed
    # meanwhile wait for the commit lock. The feeder lets pending commits go first, but for one
    # loop turn only: it must not keep the freed slots until they are through, so the third and
    # fourth pages are fetched during the first commit too.
    fetched, commit_ended = _crawl_with_a_slow_first_commit(site, tmp_out, 2, 4)
    assert fetched[3] < commit_ended


class _BuggyAck(MemoryFrontier):
    """A memory frontier with a bug: ``ack_many`` raises for the first ``times`` commits that hold
    a page whose URL contains ``marker``, before acking them or (``after``) once they are acked."""

    def __init__(self, marker: str, *, after: bool, times: int = 1) -> None:
        super().__init__(host_limits=lambda host: HostLimits(concurrency=4, delay=0.0))
        self.marker = marker
        self.after = after
        self.times = times
        self.raised = 0

    async def ack_many(self, acks: Sequence[tuple[Request, Sequence[Request]]]) -> PushResult:
        hit = self.raised < self.times and any(self.marker in request.url for request, _ in acks)
        if hit and not self.after:
            self.raised += 1
            raise RuntimeError("a bug before the ack")
        result = await super().ack_many(acks)
        if hit:
            self.raised += 1
            raise RuntimeError("a bug after the ack")
        return result


def _crawl_with(
    spider: type[Spider], frontier: MemoryFrontier, out: Path, settings: dict[str, Any], **kwargs: str
) -> tuple[CrawlStats, list[dict[str, Any]]]:
    engine = Engine(
        spider,
        resolve_settings(spider, {"parse_workers": 1, "obey_robots": False, **settings}),
        out,
        spider_kwargs=kwargs,
        frontier=frontier,
        handle_signals=False,
    )
    stats = run_engine(engine)
    return stats, [orjson.loads(line) for line in out.read_bytes().splitlines()]


def test_a_page_given_up_to_an_internal_error_still_gives_its_links(site: Site, tmp_out: Path) -> None:
    # The start page's commit hits a bug before its ack. The page fails (its item had reached
    # the output already), but its links were extracted and the parser worker will not send
    # them again: the crawl must push them, or the whole graph behind the start page is lost.
    frontier = _BuggyAck("/graph/0?", after=False)
    stats, items = _crawl_with(GraphSpider, frontier, tmp_out, {"concurrency": 8}, base=site.base, size="200")
    assert frontier.raised == 1
    assert stats.failures["internal_error"] == 1 and stats.pages_failed == 1
    assert sorted(item["n"] for item in items) == sorted(reachable(200))
    assert stats.stop_reason == "finished"


def test_a_bug_after_the_ack_ends_no_worker_task(site: Site, tmp_out: Path) -> None:
    # One slot, two worker tasks. The first four commits raise once their pages are acked. The
    # frontier is done with those requests: failing them too would raise again and end the task,
    # and with both tasks gone the crawl would end there, the other pages never fetched.
    frontier = _BuggyAck("/ok?", after=True, times=4)
    paths = ",".join(f"/ok?i={i}" for i in range(8))
    stats, items = _crawl_with(
        UrlListSpider, frontier, tmp_out, {"concurrency": 1}, base=site.base, paths=paths
    )
    assert sorted(item["url"] for item in items) == sorted(f"{site.base}{p}" for p in paths.split(","))
    assert frontier.raised == 4
    assert stats.failures["internal_error"] == 4
    assert stats.stop_reason == "finished"


class _OpensWhenTheWorkersAreUp(MemoryFrontier):
    """A memory frontier whose ``open()`` waits (10 s at most) for the parser workers to be up.

    With ``fail``, it then raises, as a corrupt job directory would.
    """

    def __init__(self, fail: bool = False) -> None:
        super().__init__(host_limits=lambda host: HostLimits(concurrency=4, delay=0.0))
        self.engine: Engine | None = None
        self.fail = fail
        self.workers_seen: list[int] = []

    async def open(self) -> Checkpoint | None:
        assert self.engine is not None
        deadline = time.monotonic() + 10
        # The pool starts one worker, then the other once it is up: both, while this waits.
        while len(self.engine.parser.pids()) < 2 and time.monotonic() < deadline:  # noqa: ASYNC110 - no event tells
            await asyncio.sleep(0.01)
        self.workers_seen = self.engine.parser.pids()
        if self.fail:
            raise ConfigError("this frontier cannot be opened")
        return await super().open()


def _engine_with(frontier: _OpensWhenTheWorkersAreUp, site: Site, out: Path) -> Engine:
    settings = resolve_settings(UrlListSpider, {"parse_workers": 2, "obey_robots": False})
    engine = Engine(
        UrlListSpider,
        settings,
        out,
        spider_kwargs={"base": site.base, "paths": "/ok"},
        frontier=frontier,
        handle_signals=False,
    )
    frontier.engine = engine
    return engine


@pytest.mark.parametrize("frontier", ["memory", "sqlite"])
def test_a_pagination_chain_is_not_starved_by_its_items(site: Site, tmp_out: Path, frontier: str) -> None:
    # One request at a time, so that the server's log is the crawl's order. First in, first out
    # would fetch each next listing after all 20 items found before it (a gap of 21); taking
    # turns, the listing comes 2 fetches after the one before: the item queued just before it
    # (the same turn, queued earlier), then the listing. The slot a listing frees is not leased
    # before the listing's links are in the frontier; were it leased first, an item would take
    # it and every gap would be 3. Slack for a slow machine, where a commit may wait behind a
    # checkpoint now and then.
    stats, items = run(
        ShopChainSpider,
        tmp_out,
        frontier,
        base=site.base,
        pages="12",
        items="20",
        settings={"concurrency": 1, "concurrency_per_host": 1},
    )
    assert stats.ok and len(items) == len({item["item"] for item in items}) == 12 * 20
    order = [entry.path for entry in site.log.entries("/shop/")]
    listings = [i for i, path in enumerate(order) if path.startswith("/shop/list/")]
    assert len(listings) == 12
    gaps = [b - a for a, b in itertools.pairwise(listings)]
    assert statistics.median(gaps) == 2 and max(gaps) <= 6, (gaps, order[:40])


def test_parser_workers_start_while_the_frontier_opens(site: Site, tmp_out: Path) -> None:
    frontier = _OpensWhenTheWorkersAreUp()
    stats = run_engine(_engine_with(frontier, site, tmp_out))
    assert len(frontier.workers_seen) == 2
    assert stats.ok and stats.items == 1


def test_a_frontier_that_cannot_open_leaves_no_parser_worker_behind(site: Site, tmp_out: Path) -> None:
    frontier = _OpensWhenTheWorkersAreUp(fail=True)
    engine = _engine_with(frontier, site, tmp_out)
    with pytest.raises(ConfigError, match="cannot be opened"):
        run_engine(engine)
    assert len(frontier.workers_seen) == 2
    assert engine.parser.pids() == []
    for pid in frontier.workers_seen:
        with pytest.raises(ProcessLookupError):  # exited, and reaped
            os.kill(pid, 0)
    assert len(site.log) == 0


def test_a_hook_that_fails_while_the_workers_start_leaves_no_worker_behind(site: Site, tmp_out: Path) -> None:
    # opened() runs while the first parser worker starts (it takes 1.5 s to import this spider)
    # and fails at once. The crawl ends at once too, not after the import: the start is
    # cancelled, and the worker it launched is killed and reaped.
    settings = resolve_settings(OpenedFails, {"parse_workers": 2, "obey_robots": False})
    engine = Engine(
        OpenedFails,
        settings,
        tmp_out,
        spider_kwargs={"base": site.base},
        frontier=MemoryFrontier(lambda host: HostLimits(concurrency=4, delay=0.0)),
        handle_signals=False,
    )
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"opened\(\) failed"):
        run_engine(engine)
    assert time.monotonic() - started < 1.0
    assert len(OpenedFails.workers_at_open) == 1  # launched, still importing the spider
    assert parser_workers_of(os.getpid()) == set()
    for pid in OpenedFails.workers_at_open:
        with pytest.raises(ProcessLookupError):  # exited, and reaped
            os.kill(pid, 0)
    assert len(site.log) == 0
