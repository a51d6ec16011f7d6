"""Rendering in a real headless Chromium against a real local shop that needs one.

One browser serves the whole session (``browser_session`` in conftest.py); each test makes its
own ``BrowserFetcher`` on it, with the settings the test is about.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from selectolax.lexbor import LexborHTMLParser

from crawlkit.errors import BrowserCrashed, RenderTimeout
from crawlkit.fetch import BrowserConfig, BrowserFetcher, Rendered, RenderPlan
from support.browser import BrowserSession, alive
from support.procs import TESTS_DIR, first_line, reaped, subprocess_env, wait_for
from support.rendershop import PRODUCTS, Proxy, RenderShop, product

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def shop() -> Iterator[RenderShop]:
    server = RenderShop()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def fetcher(session: BrowserSession, **config: Any) -> BrowserFetcher:
    return BrowserFetcher(BrowserConfig(**config), launcher=session.launcher)


def links(page: Rendered) -> list[str]:
    tree = LexborHTMLParser(page.body)
    return [str(a.attributes["href"]) for a in tree.css("a.product")]


def test_every_product_once_and_no_image_or_font_downloaded(
    browser_session: BrowserSession, shop: RenderShop
) -> None:
    shop.log.clear()
    more = RenderPlan.parse(wait_for="a.product", actions=[{"click": "button#more", "repeat": 10}])
    scroll = RenderPlan.parse(wait_for="a.product", actions=[{"scroll": "bottom", "max_steps": 20}])
    detail = RenderPlan.parse(
        wait_for="h1.ready",
        actions=[{"evaluate": "JSON.parse(document.getElementById('data').textContent)", "as": "product"}],
    )

    async def crawl(f: BrowserFetcher) -> tuple[list[str], list[str], list[Rendered]]:
        by_button, by_scroll = await asyncio.gather(
            f.render(shop.url("/more"), more), f.render(shop.url("/scroll"), scroll)
        )
        found = links(by_button) + links(by_scroll)
        pages = await asyncio.gather(*(f.render(shop.url(href), detail) for href in found))
        return links(by_button), links(by_scroll), list(pages)

    f = fetcher(browser_session)
    by_button, by_scroll, pages = browser_session.run(crawl(f))
    browser_session.run(f.close())

    half = PRODUCTS // 2
    assert by_button == [f"/product/{i}" for i in range(half)]  # each once, in order
    assert by_scroll == [f"/product/{i}" for i in range(half, PRODUCTS)]
    for page in pages:
        pid = int(page.url.rsplit("/", 1)[1])
        assert page.status == 200
        assert page.results == {"product": product(pid)}  # the evaluated result, as JSON
        tree = LexborHTMLParser(page.body)  # and the rendered DOM itself
        assert tree.css_first("h1").text() == f"Product {pid}"
        assert ("Content-Type", "text/html; charset=utf-8") in page.headers
        assert page.blocked == 2  # its image and its font
    # Not one image or font reached the server; the stylesheet, the scripts' API calls did.
    assert not [p for p in shop.log if p.startswith(("/static/big.jpg", "/static/font"))]
    assert "/static/style.css" in shop.log
    assert f.stats.renders == PRODUCTS + 2
    assert f.stats.blocked["image"] == PRODUCTS + 2
    assert f.stats.blocked["font"] == PRODUCTS + 2


def test_a_page_that_never_loads_fails_alone_at_its_deadline(
    browser_session: BrowserSession, shop: RenderShop
) -> None:
    async def run(f: BrowserFetcher) -> tuple[float, Rendered]:
        started = time.monotonic()
        with pytest.raises(RenderTimeout, match="deadline of 2 s"):
            await f.render(shop.url("/hang"), RenderPlan.parse(timeout=2))
        took = time.monotonic() - started
        return took, await f.render(shop.url("/product/7"), RenderPlan.parse(wait_for="h1.ready"))

    f = fetcher(browser_session, concurrency=1)
    took, after = browser_session.run(run(f))
    browser_session.run(f.close())
    assert 2 <= took < 10  # the deadline, and the page's close: not the page's own timeout
    assert b"Product 7" in after.body  # the one slot was freed, the next render works
    assert f.stats.failures == {"render_timeout": 1}


def test_memory_stays_bounded_over_two_hundred_renders(
    browser_session: BrowserSession, shop: RenderShop
) -> None:
    plan = RenderPlan.parse(wait_for="h1.ready")

    async def run(f: BrowserFetcher) -> list[int]:
        samples = []
        for start in range(0, 200, 20):
            urls = [shop.url(f"/product/{i % PRODUCTS}") for i in range(start, start + 20)]
            await asyncio.gather(*(f.render(url, plan) for url in urls))
            await f.launcher.scan()
            samples.append(f.launcher.memory_bytes())
        return samples

    f = fetcher(browser_session, concurrency=2, context_pages=20)
    samples = browser_session.run(run(f), timeout=300)
    browser_session.run(f.close())
    assert f.stats.renders == 200
    assert f.stats.contexts >= 10  # recycled every 20 pages
    # Generous: a leak of pages or contexts would grow past it; Chromium itself varies a lot.
    assert max(samples) < 1200 * MIB, [s // MIB for s in samples]
    assert samples[-1] < samples[0] + 300 * MIB, [s // MIB for s in samples]


def test_the_browser_is_restarted_above_its_memory_limit(
    browser_session: BrowserSession, shop: RenderShop
) -> None:
    plan = RenderPlan.parse(wait_for="h1.ready")
    f = fetcher(browser_session, max_memory_mb=1)  # any browser is above 1 MiB
    browser_session.run(f.start())
    before, old = browser_session.launcher.launches, browser_session.launcher.pids()
    browser_session.run(f.render(shop.url("/product/1"), plan))
    wait_for(lambda: not alive(old), 15, "the old browser's processes to end")  # restarted after it
    page = browser_session.run(f.render(shop.url("/product/2"), plan))
    browser_session.run(f.close())
    assert browser_session.launcher.launches == before + 1  # the second render launched a new one
    assert f.stats.restarts["memory"] >= 1
    assert b"Product 2" in page.body


def test_a_crashed_browser_fails_its_render_and_the_next_one_works(
    browser_session: BrowserSession, shop: RenderShop
) -> None:
    f = fetcher(browser_session, concurrency=1)
    browser_session.run(f.render(shop.url("/product/3")))
    old = browser_session.launcher.pids()
    chromium = old[1]  # the guard's child: Chromium's browser process

    async def crash_during_render() -> None:
        render = asyncio.ensure_future(f.render(shop.url("/hang"), RenderPlan.parse(timeout=20)))
        await asyncio.sleep(1)
        os.kill(chromium, signal.SIGKILL)
        with pytest.raises(BrowserCrashed):
            await render

    browser_session.run(crash_during_render())
    wait_for(lambda: not alive(old), 15, "the crashed browser's processes to end")
    page = browser_session.run(f.render(shop.url("/product/4"), RenderPlan.parse(wait_for="h1.ready")))
    browser_session.run(f.close())
    assert b"Product 4" in page.body
    assert f.stats.failures["browser_crashed"] == 1


def test_a_new_context_beyond_max_contexts_closes_an_idle_one_not_itself(
    browser_session: BrowserSession, shop: RenderShop
) -> None:
    f = fetcher(browser_session, max_contexts=2)
    plan = RenderPlan.parse(wait_for="h1.ready")
    pages = [browser_session.run(f.render(shop.url("/product/1"), plan, session=f"s{i}")) for i in range(4)]
    browser_session.run(f.close())
    assert all(b"Product 1" in page.body for page in pages)
    assert f.stats.contexts == 4 and not f.stats.failures


def test_headers_cookies_and_a_proxy_per_render(browser_session: BrowserSession, shop: RenderShop) -> None:
    proxy = Proxy()
    proxy.start()
    try:
        f = fetcher(browser_session)
        echo = RenderPlan.parse(
            wait_for="#echo:not(:empty)",
            actions=[{"evaluate": "JSON.parse(document.getElementById('echo').textContent)", "as": "echo"}],
        )
        page = browser_session.run(
            f.render(shop.url("/echo"), echo, headers={"X-Shop-Test": "yes"}, cookies={"sid": "abc"})
        )
        via = browser_session.run(f.render("http://shop.invalid/page", proxy=proxy.base))
        browser_session.run(f.close())
    finally:
        proxy.stop()
    assert page.results["echo"]["headers"]["X-Shop-Test"] == "yes"
    assert page.results["echo"]["cookies"] == {"sid": "abc"}
    assert b"via proxy" in via.body
    assert proxy.seen == ["http://shop.invalid/page"]


def test_screenshot_and_pdf_on_request(browser_session: BrowserSession, shop: RenderShop) -> None:
    f = fetcher(browser_session)
    page = browser_session.run(
        f.render(shop.url("/product/5"), RenderPlan.parse(wait_for="h1.ready", screenshot=True, pdf=True))
    )
    browser_session.run(f.close())
    assert page.screenshot is not None and page.screenshot.startswith(b"\x89PNG")
    assert page.pdf is not None and page.pdf.startswith(b"%PDF")


def running(pids: list[int]) -> list[int]:
    """Those of ``pids`` that still run (a zombie whose parent is gone waits for init: not ours)."""
    left = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state != b"Z":
            left.append(pid)
    return left


def _comm(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().strip()
    except OSError:
        return b""


def _children(pid: int) -> list[int]:
    from crawlkit.fetch._chromium_guard import _descendants

    return _descendants(pid)


def test_kill_9_of_the_crawl_leaves_no_browser_behind(
    browser_session: BrowserSession, shop: RenderShop
) -> None:
    # Its own browser: this process starts one, as a crawl does, and is killed with it running.
    proc = subprocess.Popen(
        [sys.executable, "-m", "support.browser_child", shop.url("/product/1")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=subprocess_env(),
        cwd=TESTS_DIR,
    )
    with reaped(proc):
        started = json.loads(first_line(proc))
        # Playwright's driver, the guard, Chromium and its helpers (which come and go).
        tree = _children(proc.pid)
        assert started["pids"][0] in tree  # the guard
        tree = sorted({*tree, *started["pids"]})
        assert len(alive(started["pids"])) >= 3
        # Playwright's driver would close the browser when the crawl's pipe closes: killed
        # too, so that only the guard is left to do it.
        drivers = [p for p in tree if p not in started["pids"] and _comm(p).startswith(b"node")]
        assert drivers
        time.sleep(1)  # in the middle of its second render
        for driver in drivers:
            os.kill(driver, signal.SIGKILL)
        proc.kill()
    wait_for(lambda: not alive(tree), 15, "the killed crawl's Chromium processes to end")
    wait_for(lambda: not running(tree), 15, "its driver to end")
    assert started["profile"] and not os.path.exists(started["profile"])
    assert not os.path.exists(started["folder"])


def test_the_memory_ceiling_counts_the_browser(browser_session: BrowserSession, shop: RenderShop) -> None:
    from crawlkit.guards._memory import MemoryGuard

    f = fetcher(browser_session)
    browser_session.run(f.render(shop.url("/product/6")))
    browser_session.run(f.launcher.scan())
    reasons: list[str] = []
    guard = MemoryGuard(
        1,  # MiB: the browser alone is over it
        worker_pids=list,
        frontier_size=lambda: 0,
        inflight_bytes=lambda: 0,
        parse_queue=lambda: 0,
        stop=reasons.append,
        browser_bytes=f.memory_bytes,
    )
    sample = guard.sample()
    assert sample is not None and sample.browser == f.memory_bytes() > 50 * MIB
    assert sample.total == sample.main + sample.browser
    assert "browser " in guard.describe(sample)
    guard.check()
    assert reasons and reasons[0].startswith("memory limit")
    browser_session.run(f.close())
