"""``GET /api/fetch?url=...``: one page through crawlkit's downloader, for a client that wants it now.

The page comes through the crawl's own ``Downloader``: robots.txt, retries with backoff (the
``RetryPolicy``, ``Retry-After`` honoured), redirects checked hop by hop, size limits. Around it:

* a deadline: the client says how long it waits (``timeout``, 30 s by default, 120 at most) and
  the fetch ends a second before, so the client gets an answer (504) rather than a dropped line;
* a bounded queue: ``fetch_concurrency`` fetches run at once and ``fetch_queue`` more may wait;
  past that the answer is 503 with ``Retry-After``;
* politeness across clients: one host is fetched by at most its ``concurrency_per_host`` at
  once, with its ``download_delay`` between them, as in a crawl;
* cancellation: the server runs with handler cancellation on, so a client that goes away
  cancels its fetch, and its slot is free at once;
* the address checks of ``_netguard.py`` on the URL and on every redirect hop, unless the server
  runs with ``--allow-private``.

Each fetch has a cookie jar of its own: no cookie of one client's fetch goes with another's.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from typing import Any

from aiohttp import web
from yarl import URL

from ..core import CrawlStats
from ..errors import FetchError
from ..fetch import DEFER, ByteBudget, Classifier, CrawlHostPolicy, Downloader, Ended, Failed, Verdict
from ..frontier import open_frontier
from ..http import Request, Response, decode_body
from ..settings import Settings
from ._api import json_response
from ._netguard import AddressRefused, NetGuard

__all__ = ["FETCHER", "FetchService"]

_DEFAULT_TIMEOUT = 30.0
_MAX_TIMEOUT = 120.0
_MARGIN = 1.0  # the deadline ends this long before the client's timeout
_RETRY_AFTER = "2"


class FetchService:
    """The fetch API's downloader, queue and per-host politeness."""

    def __init__(self, settings: Settings, guard: NetGuard, *, queue: int, concurrency: int) -> None:
        self.settings = settings.replace(frontier="memory")
        self.guard = guard
        self.queue = queue
        self.concurrency = concurrency
        self.running = 0
        self.waiting = 0
        self._slots = asyncio.Semaphore(concurrency)
        self._hosts: dict[str, tuple[asyncio.Semaphore, list[float]]] = {}
        self.host_policy = CrawlHostPolicy.from_settings(self.settings)
        self.stats = CrawlStats()
        self._downloader: Downloader | None = None
        self._jar = 0
        self._classifier = Classifier()

    async def start(self) -> None:
        frontier = open_frontier(self.settings, self.host_policy, spider_name="fetch-api")
        await frontier.open()
        downloader = Downloader(
            self.settings,
            frontier=frontier,
            stats=self.stats,
            host_policy=self.host_policy,
            budget=ByteBudget(self.settings.max_inflight_bytes),
            resolver=self.guard.resolver,
            hop_check=None if self.guard.allow_private else self.guard.hop_check,
        )
        self._downloader = await downloader.__aenter__()

    async def close(self) -> None:
        if self._downloader is not None:
            await self._downloader.__aexit__(None, None, None)
            self._downloader = None
        await self.guard.close()

    def figures(self) -> dict[str, int]:
        return {"running": self.running, "waiting": self.waiting, "queue": self.queue}

    async def handle(self, request: web.Request) -> web.Response:
        url = request.query.get("url", "")
        try:
            timeout = float(request.query.get("timeout", _DEFAULT_TIMEOUT))
        except ValueError:
            return json_response({"error": "timeout must be a number of seconds"}, 400)
        if not 1 <= timeout <= _MAX_TIMEOUT:
            return json_response({"error": f"timeout must be within 1..{_MAX_TIMEOUT:.0f} seconds"}, 400)
        unknown = set(request.query) - {"url", "timeout", "token"}
        if unknown:
            # render, session, proxy: not wired into the fetch API yet; refused rather than ignored.
            return json_response({"error": f"options not supported: {', '.join(sorted(unknown))}"}, 400)
        try:
            url = await self.guard.check(url)
        except AddressRefused as exc:
            return json_response({"error": str(exc), "classification": "refused"}, 400)
        if self.waiting >= self.queue:
            return json_response(
                {"error": "the fetch queue is full; try again shortly"}, 503, {"Retry-After": _RETRY_AFTER}
            )
        deadline = time.monotonic() + max(timeout - _MARGIN, 0.5)
        self.waiting += 1
        try:
            async with asyncio.timeout_at(_loop_time(deadline)):
                await self._slots.acquire()
        except TimeoutError:
            return json_response({"error": "timed out waiting in the fetch queue"}, 504)
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            async with asyncio.timeout_at(_loop_time(deadline)):
                return await self._fetch(url)
        except TimeoutError:
            return json_response({"error": f"no answer within the deadline ({timeout - _MARGIN:.1f} s)"}, 504)
        finally:
            self.running -= 1
            self._slots.release()

    @contextlib.asynccontextmanager
    async def _host_turn(self, url: str) -> Any:
        """The host's slot and delay, as a crawl keeps them, shared by every client."""
        host = URL(url).host or ""
        limits = self.host_policy.limits(host)
        if host not in self._hosts:
            self._hosts[host] = (asyncio.Semaphore(max(1, limits.concurrency)), [0.0])
        slot, last = self._hosts[host]
        async with slot:
            wait = last[0] + self.host_policy.delay(host) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                yield
            finally:
                last[0] = time.monotonic()

    async def _fetch(self, url: str) -> web.Response:
        downloader = self._downloader
        assert downloader is not None, "FetchService used before start()"
        self._jar += 1
        request = Request(url, meta={"allow_binary": True, "cookiejar": f"fetch-api-{self._jar}"})
        started = time.monotonic()
        attempts = 0
        try:
            while True:
                attempts += 1
                async with self._host_turn(url):
                    outcome = await downloader.download(request)
                if isinstance(outcome, Failed) and outcome.retry_in is not None:
                    request.attempt += 1
                    await asyncio.sleep(outcome.retry_in)  # the deadline still holds over the wait
                    continue
                if isinstance(outcome, Ended) and outcome.reason == DEFER:
                    attempts -= 1  # robots.txt of the origin is being fetched: not an attempt
                    await asyncio.sleep(0.1)
                    continue
                break
        finally:
            if downloader.fetcher is not None:
                await downloader.fetcher.drop_jar(request.meta["cookiejar"])
        figures: dict[str, Any] = {
            "url": url,
            "attempts": attempts,
            "elapsed_s": round(time.monotonic() - started, 3),
        }
        if isinstance(outcome, Failed):
            if outcome.response is None:
                error: FetchError = outcome.error
                label = self._classifier.error(error)
                return json_response(
                    {
                        **figures,
                        "classification": str(label.label),
                        "reason": error.reason,
                        "error": str(error),
                    },
                    502,
                )
            fetched = outcome.response
        elif isinstance(outcome, Verdict):  # robots.txt, a redirect refused or filtered
            reason = getattr(outcome, "reason", None)
            return json_response({**figures, "classification": "not_fetched", "reason": reason}, 502)
        else:
            fetched = outcome
        if fetched.hold is not None:
            fetched.hold.release()
        label = self._classifier.response(
            fetched.status, fetched.headers, fetched.body, fetched.content_encoding, url=fetched.url
        )
        page = _page(request, fetched, self.settings)
        return json_response({**figures, **page, "classification": str(label.label), "reason": label.reason})


def _page(request: Request, fetched: Any, settings: Settings) -> dict[str, Any]:
    body = decode_body(fetched.body, fetched.content_encoding, settings.max_response_size or (1 << 62))
    response = Response(fetched.url, fetched.status, fetched.headers, body, request)
    page: dict[str, Any] = {"final_url": fetched.url, "status": fetched.status, "headers": fetched.headers}
    try:
        page["body"], page["body_encoding"], page["charset"] = response.text, "text", response.encoding
    except Exception:  # not text (an image, a PDF): the bytes, in base64
        page["body"], page["body_encoding"] = base64.b64encode(body).decode(), "base64"
    return page


def _loop_time(deadline: float) -> float:
    """A ``time.monotonic()`` deadline on the running loop's clock (uvloop's may differ)."""
    loop = asyncio.get_running_loop()
    return loop.time() + (deadline - time.monotonic())


FETCHER = web.AppKey("fetcher", FetchService)
