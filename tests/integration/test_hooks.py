"""Middlewares, errbacks, crawl events and cookie jars, against real servers on 127.0.0.1.

The real engine, real parser workers (or inline callbacks where the test reads what middlewares
recorded in this process), the durable SQLite frontier and real crawl processes killed with
SIGKILL.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from crawlkit import crawl
from crawlspiders import hooks_spiders
from crawlspiders.hooks_spiders import ApiShopSpider, EchoSpider, TwoSessionsSpider
from support import procs
from support.apishop import ApiShop, product, product_ids

MIDDLEWARE = "crawlspiders.hooks_spiders:ApiKeyMiddleware"


@pytest.fixture
def shop() -> Iterator[ApiShop]:
    server = ApiShop()
    server.start()
    yield server
    server.stop()


def read(out: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in out.read_bytes().splitlines()]


def fast_retries(**more: Any) -> dict[str, Any]:
    return {"max_retries": 1, "retry_backoff_base": 0.01, "retry_backoff_max": 0.05, **more}


@pytest.mark.parametrize("frontier", ["sqlite", "memory"])
def test_a_scrapy_style_spider_with_a_middleware_and_an_errback_gets_every_product_and_failure(
    shop: ApiShop, tmp_out: Path, frontier: str
) -> None:
    settings = fast_retries(
        frontier=frontier, job_dir=str(tmp_out.parent / "job"), parse_workers=2, middlewares=[MIDDLEWARE]
    )
    stats = crawl(ApiShopSpider, tmp_out, settings=settings, handle_signals=False, base=shop.base)
    items = read(tmp_out)
    products = [item for item in items if item["kind"] == "product"]
    assert sorted(products, key=lambda p: p["id"]) == [
        {"kind": "product", **product(pid)} for pid in product_ids()
    ]
    failures = {item["url"]: item for item in items if item["kind"] == "failure"}
    assert len(failures) == 2 * 3 and len(items) == len(products) + len(failures)
    for page in (1, 2, 3):
        broken = failures[f"{shop.base}/api/broken/{page}"]
        # Retried (500 is retryable), then given up: the last response comes with the failure.
        assert broken["reason"] == "http_500" and broken["exception"] == "RetriesExhausted"
        assert broken["status"] == 500 and "after 2 attempts" in broken["message"]
        gone = failures[f"{shop.base}/api/gone/{page}"]
        assert (gone["reason"], gone["exception"], gone["status"]) == ("http_404", "HTTPStatusError", 404)
    assert shop.hits["/api/broken/1"] == 2 and shop.hits["/api/gone/1"] == 1
    assert shop.logins == {"alice": 1}
    # Still counted as failures in the summary, with an errback or not.
    assert stats.failures == {"http_500": 3, "http_404": 3}
    assert stats.items == len(items)


def test_without_the_middleware_the_api_refuses_and_the_errback_says_so(shop: ApiShop, tmp_out: Path) -> None:
    settings = fast_retries(frontier="memory", parse_workers=1)
    crawl(ApiShopSpider, tmp_out, settings=settings, handle_signals=False, base=shop.base)
    # A 403 is a block: the errback gets it as one, with the answer's status.
    failures = read(tmp_out)
    assert {(item["reason"], item["exception"], item["status"]) for item in failures} == {
        ("blocked", "Blocked", 403)
    }


def test_two_cookie_jars_in_one_crawl_stay_apart(shop: ApiShop, tmp_out: Path) -> None:
    settings = {"frontier": "memory", "parse_workers": 1}
    crawl(TwoSessionsSpider, tmp_out, settings=settings, handle_signals=False, base=shop.base)
    items = read(tmp_out)
    by_jar: dict[Any, list[dict[str, Any]]] = {}
    for item in items:
        by_jar.setdefault(item["jar"], []).append(item)
    assert shop.logins == {"alice": 1, "bob": 1}
    for user in ("alice", "bob"):
        assert len(by_jar[user]) == 3
        for item in by_jar[user]:
            # Its own session, and the cookie its login request set, sent again from its jar.
            assert item["user"] == user
            assert item["cookies"]["flavour"] == f"{user}-flavour"
    # The crawl's own jar (no meta["cookiejar"]) holds neither session.
    assert [(i["user"], i["cookies"]) for i in by_jar[None]] == [(None, {})]


def _slow_shop_command(shop: ApiShop, out: Path, job: Path) -> list[str]:
    return [
        sys.executable, "-m", "crawlkit", "runspider",
        str(Path(hooks_spiders.__file__).with_name("api_shop_spider.py")),
        "-o", str(out), "--job-dir", str(job),
        "-a", f"base={shop.base}", "-s", "commit_interval=0.1",
        "-s", "parse_workers=1", "--concurrency", "2", "-s", "max_retries=0", "--log-level", "WARNING",
    ]  # fmt: skip


def _start(cmd: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    # tests/ on PYTHONPATH: the spider file imports its base class and its middleware from there.
    env = procs.subprocess_env()
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_a_crawl_killed_after_logging_in_resumes_without_logging_in_again(tmp_path: Path) -> None:
    shop = ApiShop(pages=6, delay=0.05)
    shop.start()
    try:
        out, job = tmp_path / "items.jsonl", tmp_path / "job"
        cmd = _slow_shop_command(shop, out, job)
        proc = _start(cmd, tmp_path)
        procs.wait_for_lines(out, 5, proc)
        time.sleep(0.4)  # past a checkpoint (commit_interval is 0.1 s)
        proc.send_signal(signal.SIGKILL)
        code, _ = procs.finish(proc, timeout=60)
        assert code == -signal.SIGKILL
        assert shop.logins == {"alice": 1}
        code, err = procs.finish(_start(cmd, tmp_path), timeout=120)
        assert code == 1 and "stopped because     finished" in err, err  # 1: the API's failures
        assert shop.logins == {"alice": 1}, "the resumed crawl logged in again"
        items = read(out)
        ids = sorted(item["id"] for item in items if item["kind"] == "product")
        assert ids == product_ids(6)  # every product once: the session's cookie came back
    finally:
        shop.stop()


# -- middlewares, one by one, in process: they record what they saw -----------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_middlewares_run_in_order_and_each_return_value_does_what_it_says(
    shop: ApiShop, tmp_out: Path
) -> None:
    hooks_spiders.CALLS.clear()
    dead = f"http://127.0.0.1:{_free_port()}/dead"
    names = ["plain", "canned", "old", "boom", "skip"]
    urls = [f"{shop.base}/echo/{name}" for name in names] + [f"{shop.base}/api/product/1", dead]
    settings = {
        "frontier": "memory",
        "parse_workers": 0,
        "max_retries": 0,
        "middlewares": [
            "crawlspiders.hooks_spiders:First",
            "crawlspiders.hooks_spiders:Steering",
            "crawlspiders.hooks_spiders:Second",
        ],
    }
    stats = crawl(EchoSpider, tmp_out, settings=settings, handle_signals=False, urls=urls)
    calls = hooks_spiders.CALLS
    # process_request in the list's order, process_response in reverse.
    plain = [c for c in calls if c[2] == "plain"]
    assert plain == [
        ("request", "first", "plain"),
        ("request", "second", "plain"),
        ("response", "second", "plain", "200"),
        ("response", "first", "plain", "200"),
    ]
    items = {item["url"]: item for item in read(tmp_out)}
    # A Response from process_request: no fetch, and every process_response still sees it.
    assert items[f"{shop.base}/echo/canned"]["h1"] == "canned" and shop.hits["/echo/canned"] == 0
    assert [c[:2] for c in calls if c[2] == "canned"] == [
        ("request", "first"),
        ("response", "second"),
        ("response", "first"),
    ]
    # A Request from process_request: scheduled instead, and the first never fetched.
    assert items[f"{shop.base}/echo/new"]["h1"] == "new"
    assert shop.hits["/echo/old"] == 0 and f"{shop.base}/echo/old" not in items
    # A middleware that raises fails its request alone, through the errback; the crawl went on.
    assert items[f"{shop.base}/echo/boom"] == {"url": f"{shop.base}/echo/boom", "failed": "middleware_error"}
    assert stats.failures["middleware_error"] == 1 and shop.hits["/echo/boom"] == 0
    # IgnoreRequest: ended unfetched, counted, no failure.
    assert f"{shop.base}/echo/skip" not in items and stats.filtered["ignored"] == 1
    # A Request from process_response: the API's refusal (401) is swapped for it.
    assert items[f"{shop.base}/echo/after-refusal"]["h1"] == "after-refusal"
    assert f"{shop.base}/api/product/1" not in items
    # process_exception in reverse order; a Response from it stands for the failed fetch.
    assert [c[:2] for c in calls if c[2] == "dead" and c[0] == "exception"] == [("exception", "second")]
    assert items[dead]["h1"] == "rescued"
    assert [c[:2] for c in calls if c[2] == "dead" and c[0] == "response"] == [
        ("response", "second"),
        ("response", "first"),
    ]


def test_an_extension_hears_every_crawl_event_and_a_handler_that_raises_stops_nothing(
    shop: ApiShop, tmp_out: Path
) -> None:
    hooks_spiders.EVENTS.clear()
    urls = [f"{shop.base}/echo/one", f"{shop.base}/echo/drop-me", f"{shop.base}/api/gone/1"]
    settings = {
        "frontier": "memory",
        "parse_workers": 1,
        "max_retries": 0,
        "extensions": ["crawlspiders.hooks_spiders:EventLog"],
        "pipelines": ["crawlspiders.hooks_spiders:DropEchoes"],
    }
    stats = crawl(EchoSpider, tmp_out, settings=settings, handle_signals=False, urls=urls)
    events = hooks_spiders.EVENTS
    scraped = sorted(e[1] for e in events if e[0] == "item_scraped")
    assert scraped == sorted(
        [f"{shop.base}/echo/one", f"{shop.base}/echo/at-idle", f"{shop.base}/api/gone/1"]
    )
    assert ("item_dropped", f"{shop.base}/echo/drop-me", "dropped") in events
    # Without the session the API answers 401: failed for good, heard, and the errback ran.
    assert ("request_failed", f"{shop.base}/api/gone/1", "blocked") in events  # a 401 is a block
    # Idle twice: the page scheduled at the first kept the crawl going.
    assert events.count(("spider_idle",)) == 2 and shop.hits["/echo/at-idle"] == 1
    assert events[-1] == ("spider_closed", "finished")
    assert stats.hook_errors == {"EventLog.broken": 3}
    assert stats.items == 3
