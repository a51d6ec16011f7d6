"""Running a render plan's steps in a page: clicks, fills, scrolling, waits, scripts.

Loading is over when the page has had no request in flight for a moment (``NetworkWatch``): that
is how a "Load more" click and a scroll step know that what they triggered has arrived, without a
fixed sleep. Every wait here is also bounded by the render's deadline, which the caller enforces
around the whole render; the bounds here only keep one step from eating all of it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import RenderError
from ..http import Click, Evaluate, Fill, Scroll, Wait, WaitFor
from ..http import RenderStep as Step

if TYPE_CHECKING:
    from playwright.async_api import Page, Request

__all__ = ["NetworkWatch", "run_steps"]

# A step's loading is over after this long with no request in flight.
QUIET = 0.25
# Longest wait for quiet after one click or scroll: a page that polls or streams is never quiet.
QUIET_CAP = 5.0
# How long a repeated click waits for its button to come back (the page re-renders it).
REPEAT_PATIENCE = 2.0
_SCROLL_JS = """() => {
    const e = document.scrollingElement || document.documentElement;
    window.scrollTo(0, e.scrollHeight);
    return e.scrollHeight;
}"""


class NetworkWatch:
    """Counts one page's requests in flight, to tell when what a step triggered has loaded."""

    def __init__(self, page: Page) -> None:
        self.in_flight = 0
        self._loop = asyncio.get_running_loop()
        self._changed = self._loop.time()
        page.on("request", self._started)
        page.on("requestfinished", self._ended)
        page.on("requestfailed", self._ended)

    def _started(self, request: Request) -> None:
        self.in_flight += 1
        self._changed = self._loop.time()

    def _ended(self, request: Request) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        self._changed = self._loop.time()

    async def quiet(self, idle: float = QUIET, cap: float = QUIET_CAP) -> None:
        """Return once no request has been in flight for ``idle`` s, or after ``cap`` s."""
        until = self._loop.time() + cap
        # What a step triggers starts a moment after it (an event handler, then fetch()).
        self._changed = max(self._changed, self._loop.time())
        while True:
            now = self._loop.time()
            if now >= until or (self.in_flight == 0 and now - self._changed >= idle):
                return
            await asyncio.sleep(0.05)


async def run_steps(
    page: Page, steps: tuple[Step, ...], watch: NetworkWatch, results: dict[str, Any]
) -> None:
    """Run ``steps`` in order; ``evaluate`` results go into ``results``."""
    for index, step in enumerate(steps):
        try:
            await _run_step(page, step, watch, results)
        except RenderError as exc:
            raise RenderError(f"actions[{index}]: {exc}", page.url) from exc


async def _run_step(page: Page, step: Step, watch: NetworkWatch, results: dict[str, Any]) -> None:
    match step:
        case Click():
            await _click(page, step, watch)
        case Fill(selector, value):
            await page.locator(selector).first.fill(value)
        case Scroll():
            await _scroll(page, step, watch)
        case WaitFor(selector, state):
            await page.locator(selector).first.wait_for(state=state)  # type: ignore[arg-type]
        case Evaluate(script, key):
            value = await page.evaluate(script)
            try:
                orjson.dumps(value)
            except TypeError as exc:
                raise RenderError(f"the result of 'evaluate' ({key!r}) is not JSON: {exc}", page.url) from exc
            results[key] = value
        case Wait(seconds):
            await asyncio.sleep(seconds)


async def _click(page: Page, step: Click, watch: NetworkWatch) -> None:
    button = page.locator(step.selector).first
    # The first click waits for the element (within the deadline): the page may still build it.
    await button.click()
    await watch.quiet()
    for _ in range(step.repeat - 1):
        # Again only while it is there: gone, hidden or disabled means there is no more.
        try:
            await button.wait_for(state="visible", timeout=REPEAT_PATIENCE * 1000)
        except Exception:  # Playwright's TimeoutError: the button did not come back
            return
        if not await button.is_enabled():
            return
        await button.click()
        await watch.quiet()


async def _scroll(page: Page, step: Scroll, watch: NetworkWatch) -> None:
    loop = asyncio.get_running_loop()
    until = loop.time() + step.max_seconds
    height = -1
    for _ in range(step.max_steps):
        new_height = int(await page.evaluate(_SCROLL_JS))
        if new_height <= height or new_height >= step.max_height:
            return  # nothing new came after the last scroll, or the page is tall enough
        height = new_height
        left = until - loop.time()
        if left <= 0:
            return
        await watch.quiet(cap=min(QUIET_CAP, left))
