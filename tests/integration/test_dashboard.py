"""The dashboard of ``crawlkit serve`` in a real headless Chromium (the session's browser).

A crawl is started from the page, its chart and item count are seen to move, and it is stopped
and resumed from the page, against a real server, a real crawl and the local test site. The page
runs under its own Content-Security-Policy: any error it logs (a refused inline script, say)
fails the test.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from conftest import Site
from support.browser import BrowserSession
from support.serveproc import make_project, serving


async def _until(what: str, check: Callable[[], Awaitable[bool]], within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.1)


def test_start_watch_stop_and_resume_a_crawl_from_the_dashboard(
    browser_session: BrowserSession, site: Site, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "project")
    with serving(project) as server:

        async def drive() -> dict[str, Any]:
            browser = await browser_session.launcher.browser()
            context = await browser.new_context()
            errors: list[str] = []
            try:
                page = await context.new_page()
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))
                page.on(
                    "response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None
                )
                await page.goto(server.base + "/")
                await page.wait_for_selector("#spider-select option[value=slow]", state="attached")
                await page.select_option("#spider-select", "slow")
                await page.fill("#job-name", "dash")
                await page.fill("#job-args", f"base={site.base}\ncount=60\ndelay=0.15")
                await page.fill("#job-settings", "concurrency=2\nseries_interval=0.2")
                await page.click("#start")

                async def text(selector: str) -> str:
                    return (await page.text_content(selector)) or ""

                async def items() -> int:
                    return int(await text("#item-count") or 0)

                await _until("the crawl to run", lambda: _eq(text("#job-status"), "running"))
                await _until("items", lambda: _gt(items(), 0))
                first_items = await items()
                await _until("a chart", lambda: _gt(page.locator("#charts polyline").count(), 0))
                first_chart = await page.inner_html("#charts")
                await _until("the item count to move", lambda: _gt(items(), first_items))
                await _until("the chart to move", lambda: _ne(page.inner_html("#charts"), first_chart))
                listed = await text("#jobs tbody")
                assert "dash" in listed and "running" in listed

                await page.click("#stop")
                await _until("the stop", lambda: _eq(text("#job-status"), "stopped"))
                stopped_items = await items()
                assert 0 < stopped_items < 60
                assert await page.is_disabled("#stop") and await page.is_enabled("#resume")

                await page.click("#resume")
                await _until("the resumed crawl to end", lambda: _eq(text("#job-status"), "finished"), 90)
                await _until("every item", lambda: _eq_int(items(), 60))
                last_items = await text("#items")
                return {"stopped": stopped_items, "last_items": last_items, "errors": errors}
            finally:
                await context.close()

        seen = browser_session.run(drive(), timeout=180)
        assert seen["errors"] == []
        assert '"i":' in seen["last_items"]  # the last items, as JSON lines
        job = server.job("dash")
        assert job["status"] == "finished" and job["figures"]["items"] == 60


async def _eq(value: Awaitable[str], expected: str) -> bool:
    return (await value) == expected


async def _eq_int(value: Awaitable[int], expected: int) -> bool:
    return (await value) == expected


async def _gt(value: Awaitable[int], than: int) -> bool:
    return (await value) > than


async def _ne(value: Awaitable[str], other: str) -> bool:
    return (await value) != other


def _note_status(errors: list[str], status: int, url: str) -> None:
    if status >= 400:
        errors.append(f"{status} {url}")
